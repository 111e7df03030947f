"""Application package management service (MEC 010-2 clause 6.3.3, resources of clause 7.3).

Handlers call these functions; each opens its own transaction and enqueues jobs only after commit.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from meao.auth.tenancy import owns, visible
from meao.catalogue import vim_images
from meao.catalogue.fetch import check_source_uri, copy_stream_to
from meao.catalogue.integrity import check_checksum, new_hasher, same_digest
from meao.config import get_settings
from meao.db.clock import db_now
from meao.db.keyset import ALL, Window, window
from meao.db.models import AppPackage, PackageVimImage
from meao.db.session import session_scope
from meao.jobs import dispatcher, outbox
from meao.jobs.contract import ONBOARD_TASK
from meao.notify.package_events import emit_pkg_notification
from meao.problems import BadRequest, Conflict, NotFound, ProblemError, UploadInterrupted, problem


def package_dir(pkg_id: str) -> Path:
    """Directory of one package in the store: ``package.zip`` as received, ``content/`` extracted."""
    return get_settings().package_store / pkg_id


def archive_path(pkg_id: str) -> Path:
    """The package file as received (served by GET package_content)."""
    return package_dir(pkg_id) / "package.zip"


def content_dir(pkg_id: str) -> Path:
    """The extracted package."""
    return package_dir(pkg_id) / "content"


def attempt_dir(pkg_id: str, attempt: int) -> Path:
    """The work directory of one onboarding attempt: its partial upload or fetch, its extraction.

    No other attempt writes there, so a superseded attempt that goes on for a while cannot clobber the
    files of the one that replaced it; only the attempt that still holds the package moves its results
    into ``package.zip`` and ``content/``.
    """
    return package_dir(pkg_id) / f"attempt-{attempt}"


def sweep_attempt_dirs(pkg_id: str) -> None:
    """Remove every attempt's work directory (as the package is recorded ONBOARDED: all attempts are over)."""
    for work in package_dir(pkg_id).glob("attempt-*"):
        shutil.rmtree(work, ignore_errors=True)


def _load(session: Session, pkg_id: str | None, appd_id: str | None, tenant: str | None = None) -> AppPackage:
    if appd_id is not None:
        pkg = find_by_appd_id(session, appd_id, tenant)
        if pkg is None:
            raise NotFound(f"no onboarded application package has appDId {appd_id}")
        return pkg
    pkg = session.get(AppPackage, pkg_id)
    if pkg is None or not owns(pkg.tenant, tenant):
        raise NotFound(f"application package {pkg_id} does not exist")
    return pkg


def find_by_appd_id(session: Session, appd_id: str, tenant: str | None = None) -> AppPackage | None:
    """The package holding ``appd_id`` that a caller of ``tenant`` sees.

    appDIds are unique per tenant; a caller without a tenant gets the package of no tenant first, then
    the oldest one.
    """
    return session.scalars(select(AppPackage).where(AppPackage.appd_id == appd_id, visible(AppPackage.tenant, tenant))
                           .order_by(AppPackage.tenant.is_not(None), AppPackage.created_at)).first()


def create_package(body: dict[str, Any], tenant: str | None = None) -> AppPackage:
    """CreateAppPkg (clause 6.2.3.2): store the resource in CREATED, then fetch ``appPkgPath`` as a job.

    ``tenant`` owns the package (None: no tenant); so it is for every ``tenant`` argument below: a caller
    of a tenant sees and touches only that tenant's packages.
    """
    settings = get_settings()
    checksum = body["checksum"]
    new_hasher(checksum["algorithm"])  # an unsupported algorithm is a 400 now, not a failed job later
    check_source_uri(body["appPkgPath"], settings)
    check_checksum(checksum["algorithm"], checksum["hash"])
    with session_scope() as session:
        pkg = AppPackage(app_pkg_name=body["appPkgName"], app_pkg_version=body["appPkgVersion"],
                         requested_provider=body.get("appProvider"),
                         checksum_algorithm=checksum["algorithm"], checksum_hash=checksum["hash"],
                         app_pkg_path=body["appPkgPath"], user_defined_data=body.get("userDefinedData"),
                         onboarding_attempt=1, tenant=tenant)
        session.add(pkg)
        session.flush()
        outbox.add(session, ONBOARD_TASK, pkg.id, 1, settings.catalogue_queue)
    dispatcher.kick()
    return pkg


def upload_content(pkg_id: str | None, appd_id: str | None, stream: BinaryIO,
                   tenant: str | None = None, expected_size: int | None = None) -> AppPackage:
    """PUT package_content (clause 7.3.7.3.3): 409 unless CREATED; stream, verify checksum, enqueue.

    ``expected_size`` is the request's Content-Length: a body that ends short is an interrupted upload.
    While the body arrives, the upload stamps its heartbeat, so the reaper can tell an upload that
    stopped (client gone, API process killed) from a slow one, and give only the first up.
    """
    settings = get_settings()
    with session_scope() as session:
        pkg = _load(session, pkg_id, appd_id, tenant)
        if pkg.onboarding_state != "CREATED":
            raise Conflict(f"application package {pkg.id} is {pkg.onboarding_state}; content can be "
                           "uploaded only while it is CREATED")
        attempt = pkg.onboarding_attempt + 1
        claimed = session.execute(
            update(AppPackage).where(AppPackage.id == pkg.id, AppPackage.onboarding_state == "CREATED",
                                     AppPackage.onboarding_attempt == pkg.onboarding_attempt)
            .values(onboarding_state="UPLOADING", onboarding_attempt=attempt, onboarding_failure=None,
                    job_started_at=None, job_worker=None, job_heartbeat_at=db_now())).rowcount
        if claimed != 1:
            raise Conflict(f"application package {pkg.id} is being uploaded by another request")
        algorithm, expected = pkg.checksum_algorithm, pkg.checksum_hash
        pkg_id = pkg.id
    work = attempt_dir(pkg_id, attempt)
    try:
        work.mkdir(parents=True, exist_ok=True)
        part = work / "upload.part"
        digest, size = copy_stream_to(stream, part, algorithm, settings.max_package_bytes,
                                      expected_size=expected_size,
                                      on_chunk=_UploadBeat(pkg_id, attempt, settings.jobs.heartbeat_s))
        if not same_digest(digest, expected):
            raise BadRequest(f"the uploaded content's {algorithm} digest is {digest}, but the package was "
                             f"created with checksum {expected}; upload the right file or recreate the "
                             "package with its real checksum")
        pkg = _uploaded(pkg_id, attempt, part, size)
    except BaseException as exc:
        _back_to_created(pkg_id, attempt, exc)
        if isinstance(exc, Exception) and not isinstance(exc, ProblemError):
            raise UploadInterrupted(f"the upload of package {pkg_id} did not complete ({type(exc).__name__}); "
                                    "upload the package again") from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dispatcher.kick()
    return pkg


def _uploaded(pkg_id: str, attempt: int, part: Path, size: int) -> AppPackage:
    """The whole package arrived: move it into place and write the onboarding job, if still ours.

    The conditional UPDATE comes first and locks the row, so the reaper cannot give the upload up
    between the check and the move.
    """
    with session_scope() as session:
        moved = session.execute(update(AppPackage).where(
            AppPackage.id == pkg_id, AppPackage.onboarding_attempt == attempt,
            AppPackage.onboarding_state == "UPLOADING", AppPackage.job_started_at.is_(None))
            .values(onboarding_state="PROCESSING", package_size=size, job_heartbeat_at=db_now())).rowcount
        if moved != 1:
            raise UploadInterrupted(f"the upload of package {pkg_id} was given up while it ran (no data "
                                    "arrived for MEAO_JOB_STALE_S seconds, or the package changed); upload "
                                    "the package again")
        part.replace(archive_path(pkg_id))
        outbox.add(session, ONBOARD_TASK, pkg_id, attempt, get_settings().catalogue_queue)
        return session.get(AppPackage, pkg_id)


class _UploadBeat:
    """Called after every chunk of an upload: stamps its heartbeat every ``every_s`` seconds.

    A stamp that matches nothing means the reaper gave the upload up: it stops there.
    """

    def __init__(self, pkg_id: str, attempt: int, every_s: float) -> None:
        self.pkg_id, self.attempt, self.every_s = pkg_id, attempt, every_s
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        with session_scope() as session:
            alive = session.execute(update(AppPackage).where(
                AppPackage.id == self.pkg_id, AppPackage.onboarding_attempt == self.attempt,
                AppPackage.onboarding_state == "UPLOADING").values(job_heartbeat_at=db_now())).rowcount
        if alive != 1:
            raise UploadInterrupted(f"the upload of package {self.pkg_id} was given up while it ran; upload "
                                    "the package again")


def _back_to_created(pkg_id: str, attempt: int, exc: BaseException) -> None:
    """The upload failed: CREATED again, with the reason (only if this upload still holds the package)."""
    failure = exc.to_problem() if isinstance(exc, ProblemError) else problem(
        400, "Upload interrupted", f"the upload did not complete ({type(exc).__name__}); upload the package again")
    with session_scope() as session:
        session.execute(update(AppPackage).where(AppPackage.id == pkg_id, AppPackage.onboarding_attempt == attempt,
                                                 AppPackage.onboarding_state == "UPLOADING")
                        .values(onboarding_state="CREATED", onboarding_failure=failure))


def get_package(pkg_id: str | None = None, appd_id: str | None = None, tenant: str | None = None) -> AppPackage:
    """One package by id or (for /onboarded_app_packages) by appDId."""
    with session_scope() as session:
        return _load(session, pkg_id, appd_id, tenant)


def package_by_id(pkg_id: str, tenant: str | None = None) -> AppPackage:
    """A package by id; NotFound otherwise (the lookup of the appPkgId path parameter)."""
    return get_package(pkg_id=pkg_id, tenant=tenant)


def package_by_appd_id(appd_id: str, tenant: str | None = None) -> AppPackage:
    """An onboarded package by appDId; NotFound otherwise (the lookup of the appDId path parameter)."""
    return get_package(appd_id=appd_id, tenant=tenant)


def list_packages(onboarded_only: bool = False, tenant: str | None = None, win: Window = ALL) -> list[AppPackage]:
    """The packages in ``win``, oldest first; ``onboarded_only`` for /onboarded_app_packages."""
    with session_scope() as session:
        stmt = select(AppPackage).where(visible(AppPackage.tenant, tenant))
        if onboarded_only:
            stmt = stmt.where(AppPackage.onboarding_state == "ONBOARDED")
        return list(session.scalars(window(stmt, AppPackage, win)))


def change_operational_state(pkg_id: str | None, appd_id: str | None, new_state: str,
                             tenant: str | None = None) -> AppPackage:
    """PATCH (clause 7.3.2.3.5): enable or disable an onboarded package; 409 when not applicable."""
    with session_scope() as session:
        pkg = _load(session, pkg_id, appd_id, tenant)
        if pkg.onboarding_state != "ONBOARDED":
            raise Conflict(f"application package {pkg.id} is {pkg.onboarding_state}: onboarding has not "
                           "completed, so it can be neither enabled nor disabled")
        if pkg.operational_state == new_state:
            verb = "enabled" if new_state == "ENABLED" else "disabled"
            raise Conflict(f"application package {pkg.id} is already {verb}")
        changed = session.execute(
            update(AppPackage).where(AppPackage.id == pkg.id, AppPackage.operational_state == pkg.operational_state)
            .values(operational_state=new_state)).rowcount
        if changed != 1:
            raise Conflict(f"application package {pkg.id} changed state concurrently; retry the request")
        session.refresh(pkg)
        emit_pkg_notification(session, pkg, "AppPackageEnabled" if new_state == "ENABLED" else
                              "AppPackageDisabled")
        return pkg


def delete_package(pkg_id: str | None, appd_id: str | None, tenant: str | None = None) -> None:
    """DELETE (clause 7.3.2.3.4): 409 unless DISABLED and NOT_IN_USE (or never onboarded)."""
    with session_scope() as session:
        pkg = _load(session, pkg_id, appd_id, tenant)
        if pkg.onboarding_state in ("UPLOADING", "PROCESSING"):
            raise Conflict(f"application package {pkg.id} is {pkg.onboarding_state}; wait until onboarding "
                           "ends, then delete it")
        if pkg.onboarding_state == "ONBOARDED":
            if pkg.operational_state != "DISABLED":
                raise Conflict(f"application package {pkg.id} is ENABLED; disable it (PATCH "
                               "operationalState=DISABLED) before deleting it")
            if pkg.usage_state != "NOT_IN_USE":
                raise Conflict(f"application package {pkg.id} is IN_USE by application instances; delete "
                               "them first")
        _release_vim_images(session, pkg)
        session.execute(delete(PackageVimImage).where(PackageVimImage.package_id == pkg.id))
        deleted = session.execute(
            AppPackage.__table__.delete().where(
                AppPackage.id == pkg.id, AppPackage.usage_state == "NOT_IN_USE",
                AppPackage.onboarding_state.notin_(("UPLOADING", "PROCESSING")))).rowcount
        if deleted != 1:
            raise Conflict(f"application package {pkg.id} changed state concurrently; retry the request")
        emit_pkg_notification(session, pkg, "AppPackageDeleted")
        pkg_id = pkg.id
    shutil.rmtree(package_dir(pkg_id), ignore_errors=True)


def _release_vim_images(session: Session, pkg: AppPackage) -> None:
    """Tell every PoP's Glance this package no longer uses its images (the last user deletes them)."""
    from meao.nfvo.drivers import get_vim
    from meao.nfvo.vim import VimError

    for cloud, image_ids in vim_images.images_by_cloud(session, pkg.id).items():
        for image_id in image_ids:
            try:
                get_vim(cloud).release_image(image_id, pkg.id)
            except VimError as exc:
                raise ProblemError(f"application package {pkg.id} cannot be deleted yet: releasing its image "
                                   f"{image_id} at cloud {cloud} failed ({exc.detail}); retry the delete",
                                   status=503, title="VIM unavailable") from exc


def require_onboarded(pkg: AppPackage) -> None:
    """409 for content/AppD reads of a package that is not ONBOARDED (clauses 7.3.6, 7.3.7)."""
    if pkg.onboarding_state != "ONBOARDED":
        raise Conflict(f"application package {pkg.id} is {pkg.onboarding_state}, not ONBOARDED; its "
                       "content is available once onboarding has completed")


class AppDFiles(NamedTuple):
    """The files of an onboarded package's AppD: ``names`` relative to ``root``, the entry file first."""

    pkg_id: str
    root: Path
    names: list[str]


def onboarded_appd(pkg_id: str | None, appd_id: str | None, tenant: str | None = None) -> AppDFiles:
    """The AppD files of an ONBOARDED package (GET …/appd, clause 7.3.6); 409 before onboarding ends."""
    pkg = get_package(pkg_id, appd_id, tenant)
    require_onboarded(pkg)
    return AppDFiles(pkg.id, content_dir(pkg.id), list(pkg.appd_files or [pkg.appd_entry]))


def onboarded_archive(pkg_id: str | None, appd_id: str | None, tenant: str | None = None) -> Path:
    """The package file of an ONBOARDED package (GET …/package_content, clause 7.3.7); 409 before."""
    pkg = get_package(pkg_id, appd_id, tenant)
    require_onboarded(pkg)
    return archive_path(pkg.id)
