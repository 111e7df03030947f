"""The onboarding job: fetch, verify, open, parse, record (MEC 010-2 clause 6.3.3.5, MEC 037 clause 6).

It runs in a Celery worker. The job carries (package id, attempt); it claims the attempt with a
compare-and-swap, so a redelivered message does nothing, and a reaper re-runs attempts whose worker
vanished.
"""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from meao.auth.tenancy import same_tenant
from meao.catalogue.appd import AppD, load_appd
from meao.catalogue.csar import (
    ArchiveLimits,
    extract_archive,
    parse_manifest,
    read_layout,
    verify_manifest_digests,
)
from meao.catalogue.fetch import fetch_to
from meao.catalogue.integrity import digest_file, hashlib_name, same_digest
from meao.catalogue.packages import archive_path, content_dir, package_dir
from meao.catalogue.signature import (
    SignatureError,
    SignatureResult,
    is_option2_envelope,
    policy_check,
    split_signed_manifest,
    unwrap_option2,
    verify_manifest_signature,
)
from meao.config import Settings, get_settings
from meao.db.models import AppPackage, utcnow
from meao.db.session import session_scope
from meao.jobs import dispatcher, outbox
from meao.jobs.contract import ONBOARD_TASK
from meao.notify.package_events import emit_pkg_notification
from meao.problems import OnboardingError, ProblemError, problem
from meao.wire.packages import artifact_info, sw_image_info

log = logging.getLogger(__name__)

# MEC 037 table 6.2.2-1: manifest metadata a MEC application package must carry
REQUIRED_METADATA = ("vnfd_id", "vnf_provider_id", "vnf_product_name", "vnf_release_date_time",
                     "vnf_software_version", "vnf_package_version", "mec_versions")
# manifest name → AppD attribute it must equal
METADATA_MATCHES = {"vnfd_id": "appd_id", "vnf_provider_id": "app_provider",
                    "vnf_product_name": "app_name", "vnf_software_version": "app_soft_version",
                    "vnf_package_version": "appd_version"}


def _claim(pkg_id: str, attempt: int) -> AppPackage | None:
    """Compare-and-swap: take this attempt if nobody has. None means: nothing to do."""
    with session_scope() as session:
        now = utcnow()
        claimed = session.execute(
            update(AppPackage).where(AppPackage.id == pkg_id, AppPackage.onboarding_attempt == attempt,
                                     AppPackage.job_started_at.is_(None),
                                     AppPackage.onboarding_state.in_(("CREATED", "PROCESSING")))
            .values(job_started_at=now, job_heartbeat_at=now)).rowcount
        if claimed != 1:
            outbox.settle(session, pkg_id, attempt, outbox.DONE)
            return None
        outbox.settle(session, pkg_id, attempt)
        return session.get(AppPackage, pkg_id)


def _set(pkg_id: str, attempt: int, **values: Any) -> None:
    with session_scope() as session:
        n = session.execute(update(AppPackage).where(AppPackage.id == pkg_id,
                                                     AppPackage.onboarding_attempt == attempt)
                            .values(job_heartbeat_at=utcnow(), **values)).rowcount
        if n != 1:
            raise _Superseded()


class _Superseded(Exception):
    """The package was deleted or another attempt took over: stop quietly."""


def run_onboarding(pkg_id: str, attempt: int) -> None:
    """Entry point of the job; never raises for package faults (they end in onboardingFailureDetails)."""
    settings = get_settings()
    pkg = _claim(pkg_id, attempt)
    if pkg is None:
        log.info("onboarding %s attempt %s: already claimed or superseded; nothing to do", pkg_id, attempt)
        return
    try:
        if not archive_path(pkg_id).exists():
            _set(pkg_id, attempt, onboarding_state="UPLOADING")
            package_dir(pkg_id).mkdir(parents=True, exist_ok=True)
            part = package_dir(pkg_id) / "fetch.part"
            digest, size = fetch_to(pkg.app_pkg_path or "", part, pkg.checksum_algorithm, settings)
            if not same_digest(digest, pkg.checksum_hash):
                part.unlink(missing_ok=True)
                raise OnboardingError(f"the package fetched from {pkg.app_pkg_path} has {pkg.checksum_algorithm} "
                                      f"digest {digest}, not the checksum given at creation "
                                      f"({pkg.checksum_hash}); fix the checksum or the file")
            part.replace(archive_path(pkg_id))
            _set(pkg_id, attempt, onboarding_state="PROCESSING", package_size=size)
        values = process_package(pkg_id, settings)
        _finish(pkg_id, attempt, values)
    except _Superseded:
        log.info("onboarding %s attempt %s superseded", pkg_id, attempt)
    except ProblemError as exc:
        _fail(pkg_id, attempt, exc.to_problem())
    except Exception as exc:  # a bug must still end the onboarding with a reason, not a stuck state
        log.exception("onboarding %s crashed", pkg_id)
        _fail(pkg_id, attempt, problem(500, "Onboarding failed",
                                       f"internal error while onboarding ({type(exc).__name__}: {exc}); "
                                       "report it with the package to the meao operators"))


def _fail(pkg_id: str, attempt: int, failure: dict[str, Any]) -> None:
    log.warning("onboarding %s failed: %s", pkg_id, failure.get("detail"))
    shutil.rmtree(content_dir(pkg_id), ignore_errors=True)
    archive_path(pkg_id).unlink(missing_ok=True)
    try:
        _set(pkg_id, attempt, onboarding_state="CREATED", onboarding_failure=failure, job_started_at=None)
    except _Superseded:
        pass


def process_package(pkg_id: str, settings: Settings) -> dict[str, Any]:
    """Open, verify and parse the stored package; return the AppPkgInfo values to record."""
    target = content_dir(pkg_id)
    shutil.rmtree(target, ignore_errors=True)
    tmp = package_dir(pkg_id) / "content.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    limits = ArchiveLimits(settings.max_unpacked_bytes, settings.max_compression_ratio,
                           settings.max_archive_members, settings.max_manifest_bytes)
    csar_path, sig = archive_path(pkg_id), SignatureResult.unsigned()
    if is_option2_envelope(csar_path):  # SOL004 security option 2: verify the whole CSAR first
        inner = package_dir(pkg_id) / "inner"
        shutil.rmtree(inner, ignore_errors=True)
        csar_path, sig = unwrap_option2(csar_path, inner, trusted_ca=_trusted_ca(settings, "an option 2 envelope"),
                                        max_bytes=settings.max_unpacked_bytes)
    sha256 = extract_archive(csar_path, tmp, limits)
    tmp.rename(target)
    layout = read_layout(target, sha256)
    if layout.manifest is None:
        raise OnboardingError("the package has no manifest: MEC 037 clause 6.2.2 requires one, named by "
                              "ETSI-Entry-Manifest in TOSCA-Metadata/TOSCA.meta")
    manifest = parse_manifest(target / layout.manifest, layout.manifest, settings.max_manifest_bytes)
    certificate = (target / layout.certificate).read_text("utf-8", errors="replace") if layout.certificate else None
    if manifest.signature_pem:  # SOL004 security option 1: the signed manifest, then its digests
        signed, cms = split_signed_manifest((target / layout.manifest).read_bytes(), manifest_name=layout.manifest)
        sig = verify_manifest_signature(signed, cms or manifest.signature_pem,
                                        trusted_ca=_trusted_ca(settings, f"manifest {layout.manifest}"),
                                        certificate_pem=certificate, manifest_name=layout.manifest)
    policy_check(sig, require_signed=settings.require_signed)
    verify_manifest_digests(target, manifest, sha256)
    appd = load_appd(target, layout.entry_definitions)
    _check_metadata(manifest.metadata, manifest.path, appd)
    known = {e.source.removeprefix("./"): e for e in manifest.entries}
    images = [_image_info(img, target, known, sha256) for img in appd.sw_images]
    image_files = {img.file for img in appd.sw_images if img.file}
    skip = image_files | set(appd.source_files) | {layout.manifest, "TOSCA-Metadata/TOSCA.meta"}
    set_of = {src.removeprefix("./"): set_id for set_id, srcs in manifest.non_mano_sets.items() for src in srcs}
    artifacts = []
    for source, entry in known.items():
        if source in skip or "://" in source:
            continue
        artifacts.append(artifact_info(source, entry.algorithm, entry.hash, set_of.get(source)))
    return {
        "appd_id": appd.appd_id, "app_name": appd.app_name, "app_provider": appd.app_provider,
        "app_software_version": appd.app_soft_version, "appd_version": appd.appd_version,
        "mec_info": list(appd.mec_version), "software_images": images, "additional_artifacts": artifacts,
        "signing_certificate": sig.certificate_pem or certificate, "appd_entry": appd.entry_file,
        "appd_files": list(appd.source_files), "appd_model": appd.to_dict(),
    }


def _trusted_ca(settings: Settings, what: str) -> Path:
    if settings.trusted_ca_file is None:
        raise SignatureError(f"{what} is signed, but no trusted CA bundle is configured to verify it; the "
                             "operator must set MEAO_TRUSTED_CA_FILE")
    return settings.trusted_ca_file


def _check_metadata(metadata: dict[str, str], where: str, appd: AppD) -> None:
    for key in REQUIRED_METADATA:
        if not metadata.get(key):
            raise OnboardingError(f"manifest {where}: metadata '{key}' is missing (MEC 037 table 6.2.2-1)")
    for key, attr in METADATA_MATCHES.items():
        expected = getattr(appd, attr)
        if expected is not None and metadata[key] != str(expected):
            raise OnboardingError(f"manifest {where}: metadata {key} is {metadata[key]!r} but the AppD "
                                  f"({appd.entry_file}) says {expected!r}; they must be identical "
                                  "(MEC 037 table 6.2.2-1)")


def _image_info(img: Any, root: Path, known: dict[str, Any], sha256: dict[str, str]) -> dict[str, Any]:
    """AppPkgSWImageInfo for one image; the image file's digest must match its swImageDescriptor."""
    if img.file:
        if img.file not in known:
            raise OnboardingError(f"software image {img.file!r} (VDU {img.vdu_id}) is not listed in the manifest "
                                  "with a digest")
        algo = img.checksum.algorithm
        actual = sha256[img.file] if hashlib_name(algo) == "sha256" else digest_file(root / img.file, algo)
        if not same_digest(actual, img.checksum.hash):
            raise OnboardingError(f"software image {img.file!r} (VDU {img.vdu_id}): its {algo} digest is "
                                  f"{actual}, but the AppD declares {img.checksum.hash}")
    return sw_image_info(img, utcnow())


def _finish(pkg_id: str, attempt: int, values: dict[str, Any]) -> None:
    appd_id = values["appd_id"]
    try:
        with session_scope() as session:
            tenant = session.scalar(select(AppPackage.tenant).where(AppPackage.id == pkg_id))
            other = session.scalars(select(AppPackage.id).where(  # appDIds are unique per tenant
                AppPackage.appd_id == appd_id, AppPackage.id != pkg_id, same_tenant(AppPackage.tenant, tenant))).first()
            if other:
                raise OnboardingError(f"appDId {appd_id} is already onboarded as application package {other}; "
                                      "delete that package first or give this AppD a new descriptor_id")
            n = session.execute(update(AppPackage).where(AppPackage.id == pkg_id,
                                                         AppPackage.onboarding_attempt == attempt)
                                .values(onboarding_state="ONBOARDED", operational_state="ENABLED",
                                        onboarding_failure=None, job_heartbeat_at=utcnow(), **values)).rowcount
            if n != 1:
                raise _Superseded()
            pkg = session.get(AppPackage, pkg_id)
            session.refresh(pkg)
            emit_pkg_notification(session, pkg, "AppPackageOnBoarded")
    except IntegrityError as exc:
        raise OnboardingError(f"appDId {appd_id} is already onboarded by another package; delete that "
                              "package first or give this AppD a new descriptor_id") from exc
    log.info("package %s onboarded as appDId %s", pkg_id, appd_id)


def reap_stale_onboardings(stale_after_s: float, *, include_unclaimed: bool = False) -> int:
    """Re-run onboardings whose worker vanished (heartbeat older than ``stale_after_s``).

    With ``include_unclaimed`` (start-up of an embedded worker, whose in-memory queue died with the
    previous process), jobs never claimed are sent again too; a duplicate is harmless (CAS claim).
    Returns the number of jobs sent.
    """
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    sent = 0
    with session_scope() as session:
        cond = [AppPackage.job_heartbeat_at < cutoff]
        if include_unclaimed:
            cond.append(AppPackage.job_started_at.is_(None))
        rows = session.scalars(select(AppPackage).where(
            AppPackage.onboarding_state.in_(("CREATED", "UPLOADING", "PROCESSING")),
            AppPackage.onboarding_failure.is_(None), or_(*cond))).all()
        for pkg in rows:
            if pkg.onboarding_state == "CREATED" and not pkg.app_pkg_path:
                continue
            if pkg.onboarding_state == "UPLOADING" and not pkg.app_pkg_path:
                if pkg.job_heartbeat_at and pkg.job_heartbeat_at.replace(tzinfo=cutoff.tzinfo) >= cutoff:
                    continue  # an upload in progress
                pkg.onboarding_state = "CREATED"
                pkg.onboarding_failure = problem(400, "Upload interrupted",
                                                 "the upload did not complete; upload the package again")
                continue
            if pkg.job_started_at is not None:
                pkg.onboarding_attempt += 1  # the old attempt's worker is gone: a new attempt takes over
                pkg.job_started_at = None
            if pkg.onboarding_state == "UPLOADING":
                pkg.onboarding_state = "CREATED"
            pkg.job_heartbeat_at = utcnow()
            outbox.add(session, ONBOARD_TASK, pkg.id, pkg.onboarding_attempt, settings.catalogue_queue)
            sent += 1
    dispatcher.kick()
    if sent:
        log.warning("re-sent %d onboarding job(s) whose worker had vanished", sent)
    return sent


def abandon_unclaimed_onboarding(pkg_id: str, attempt: int, reason: str) -> bool:
    """End an onboarding attempt whose job will never run (purged): back to CREATED with the reason.

    Only an attempt no worker has claimed is touched (compare-and-swap), so a job already running wins.
    """
    purged = problem(503, "Onboarding job purged", f"onboarding of package {pkg_id} did not run: {reason}; "
                     "upload the package again or recreate it")
    with session_scope() as session:
        done = session.execute(update(AppPackage).where(
            AppPackage.id == pkg_id, AppPackage.onboarding_attempt == attempt, AppPackage.job_started_at.is_(None),
            AppPackage.onboarding_state.in_(("CREATED", "UPLOADING", "PROCESSING")))
            .values(onboarding_state="CREATED", onboarding_failure=purged)).rowcount == 1
        if done:
            outbox.settle(session, pkg_id, attempt, outbox.DONE)
    if done:
        log.warning("onboarding %s attempt %s abandoned: %s", pkg_id, attempt, reason)
    return done
