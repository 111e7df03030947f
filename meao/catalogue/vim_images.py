"""Which images of a package live in which PoP's Glance: what the grant lists and the package's deletion releases.

One :class:`meao.db.models.PackageVimImage` row per (package, cloud, image). Notes from concurrent
workers are idempotent inserts, so none overwrites another (as a shared JSON value did on SQLite).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from meao.db.inserts import insert_if_absent
from meao.db.models import PackageVimImage, utcnow
from meao.db.session import session_scope


def note_image(package_id: str, cloud: str, image_id: str) -> None:
    """Record that the package has this image at ``cloud`` (its own transaction; noting twice is harmless)."""
    with session_scope() as session:
        insert_if_absent(session, PackageVimImage, package_id=package_id, cloud=cloud, image_id=image_id,
                         created_at=utcnow())


def images_at(session: Session, package_id: str, cloud: str) -> list[str]:
    """The package's image ids at one cloud, oldest note first (the Grant's vimAssets.softwareImages)."""
    return list(session.scalars(select(PackageVimImage.image_id).where(
        PackageVimImage.package_id == package_id, PackageVimImage.cloud == cloud)
        .order_by(PackageVimImage.created_at, PackageVimImage.image_id)))


def images_by_cloud(session: Session, package_id: str) -> dict[str, list[str]]:
    """Every image of the package, per cloud (what deleting the package releases)."""
    found: dict[str, list[str]] = {}
    for cloud, image_id in session.execute(select(PackageVimImage.cloud, PackageVimImage.image_id).where(
            PackageVimImage.package_id == package_id).order_by(PackageVimImage.cloud, PackageVimImage.created_at)):
        found.setdefault(cloud, []).append(image_id)
    return found
