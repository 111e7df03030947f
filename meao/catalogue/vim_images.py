"""Which images of a package live in which PoP's Glance: what the grant lists and the package's deletion releases.

One :class:`meao.db.models.PackageVimImage` row per (package, cloud, image). Notes from concurrent
workers are idempotent inserts, so none overwrites another (as a shared JSON value did on SQLite).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from meao.db.inserts import insert_if_absent
from meao.db.models import PackageVimImage, utcnow
from meao.db.session import session_scope


def note_image(package_id: str, cloud: str, image_id: str, appd_sw_image_id: str | None = None) -> None:
    """Record that the package has this image at ``cloud``, realising the AppD's software image descriptor
    ``appd_sw_image_id`` (its own transaction; noting twice is harmless, and fills in a descriptor id
    that an older note lacks)."""
    with session_scope() as session:
        if insert_if_absent(session, PackageVimImage, package_id=package_id, cloud=cloud, image_id=image_id,
                            appd_sw_image_id=appd_sw_image_id, created_at=utcnow()) or appd_sw_image_id is None:
            return
        session.execute(update(PackageVimImage).where(
            PackageVimImage.package_id == package_id, PackageVimImage.cloud == cloud,
            PackageVimImage.image_id == image_id, PackageVimImage.appd_sw_image_id.is_(None))
            .values(appd_sw_image_id=appd_sw_image_id))


def images_at(session: Session, package_id: str, cloud: str) -> list[tuple[str, str]]:
    """The package's images at one cloud as (AppD software image descriptor id, VIM image id) pairs, oldest
    note first: the Grant's vimAssets.softwareImages. Images noted without a descriptor id are left out."""
    return [(appd_id, image_id) for appd_id, image_id in session.execute(
        select(PackageVimImage.appd_sw_image_id, PackageVimImage.image_id).where(
            PackageVimImage.package_id == package_id, PackageVimImage.cloud == cloud,
            PackageVimImage.appd_sw_image_id.is_not(None))
        .order_by(PackageVimImage.created_at, PackageVimImage.image_id))]


def images_by_cloud(session: Session, package_id: str) -> dict[str, list[str]]:
    """Every image of the package, per cloud (what deleting the package releases)."""
    found: dict[str, list[str]] = {}
    for cloud, image_id in session.execute(select(PackageVimImage.cloud, PackageVimImage.image_id).where(
            PackageVimImage.package_id == package_id).order_by(PackageVimImage.cloud, PackageVimImage.created_at)):
        found.setdefault(cloud, []).append(image_id)
    return found
