"""The onboarding job: fetch, verify, open, parse, record (MEC 010-2 clause 6.3.3.5, MEC 037 clause 6).

It runs in a Celery worker. The job carries (package id, attempt); the worker claims the attempt for
itself with a compare-and-swap (a redelivered message does nothing) and gets a :class:`Claim`. Every
write it makes after that is fenced on (package, attempt, worker); a heartbeat thread stamps the claim
with the database clock through fetch, extraction and processing. A reaper gives up attempts whose
heartbeat stopped and sends a new attempt; the old worker's next write then matches nothing, it gets
:class:`Superseded` and stops. Each attempt works in its own directory (``attempt-N/``); only the
attempt that still holds the claim moves its results into ``package.zip`` and ``content/``, or deletes
them when it fails, so a superseded attempt can clobber nothing.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from meao import faults
from meao.auth.tenancy import same_tenant
from meao.catalogue.appd import AppD, load_appd
from meao.catalogue.csar import (
    ArchiveLimits,
    extract_archive,
    parse_manifest,
    read_layout,
    unlisted_members,
    verify_manifest_digests,
)
from meao.catalogue.fetch import fetch_to
from meao.catalogue.integrity import digest_file, hashlib_name, same_digest
from meao.catalogue.packages import archive_path, attempt_dir, content_dir, sweep_attempt_dirs
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
from meao.db.clock import db_now
from meao.db.models import AppPackage, utcnow
from meao.db.session import session_scope
from meao.jobs import dispatcher, outbox
from meao.jobs.contract import ONBOARD_TASK
from meao.jobs.fencing import WORKER_ID, Heartbeat, Superseded
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


ACTIVE = ("CREATED", "UPLOADING", "PROCESSING")  # onboarding states an attempt can be running in


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one onboarding attempt; each write is fenced (:class:`Superseded` when lost)."""

    pkg_id: str
    attempt: int
    worker: str

    def stamp(self, session: Session, **values: Any) -> None:
        """Heartbeat (and ``values``) in ``session`` if the claim still holds; the row stays locked until commit."""
        held = session.execute(update(AppPackage).where(
            AppPackage.id == self.pkg_id, AppPackage.onboarding_attempt == self.attempt,
            AppPackage.job_worker == self.worker, AppPackage.onboarding_state.in_(ACTIVE))
            .values(job_heartbeat_at=db_now(), **values)).rowcount
        if held != 1:
            raise Superseded(f"onboarding attempt {self.attempt} of package {self.pkg_id} is no longer held by "
                             f"{self.worker}")

    def heartbeat(self) -> None:
        """Stamp the attempt alive (and prove it is still held)."""
        with session_scope() as session:
            self.stamp(session)

    def set(self, **values: Any) -> None:
        """Write ``values`` while the claim holds."""
        with session_scope() as session:
            self.stamp(session, **values)


def claim(pkg_id: str, attempt: int, worker: str) -> tuple[Claim, AppPackage] | None:
    """Take ``attempt`` for ``worker``; None when it is taken, superseded, failed or over (do nothing)."""
    with session_scope() as session:
        taken = session.execute(update(AppPackage).where(
            AppPackage.id == pkg_id, AppPackage.onboarding_attempt == attempt, AppPackage.job_started_at.is_(None),
            AppPackage.onboarding_failure.is_(None), AppPackage.onboarding_state.in_(("CREATED", "PROCESSING")))
            .values(job_started_at=db_now(), job_heartbeat_at=db_now(), job_worker=worker)).rowcount == 1
        outbox.settle(session, pkg_id, attempt, outbox.CLAIMED if taken else outbox.DONE)
        return (Claim(pkg_id, attempt, worker), session.get(AppPackage, pkg_id)) if taken else None


def run_onboarding(pkg_id: str, attempt: int) -> None:
    """Entry point of the job; never raises for package faults (they end in onboardingFailureDetails)."""
    settings = get_settings()
    claimed = claim(pkg_id, attempt, WORKER_ID)
    if claimed is None:
        log.info("onboarding %s attempt %s: already claimed, superseded or over; nothing to do", pkg_id, attempt)
        return
    held, pkg = claimed
    beat = Heartbeat(held.heartbeat, f"onboarding {pkg_id} attempt {attempt}")
    beat.start()
    work = attempt_dir(pkg_id, attempt)
    try:
        failure = _onboard_or_failure(held, pkg, work, beat, settings)
        if failure is not None:
            _fail(held, failure)
    except Superseded as exc:
        log.warning("onboarding %s: %s; this worker stops and touches nothing shared", pkg_id, exc)
    finally:
        beat.halt.set()
        shutil.rmtree(work, ignore_errors=True)  # this attempt's own scratch: no other attempt uses it


def _onboard_or_failure(held: Claim, pkg: AppPackage, work: Path, beat: Heartbeat,
                        settings: Settings) -> dict[str, Any] | None:
    """Onboard; None when done, else the failure to record (the heartbeat is stopped either way)."""
    try:
        _onboard(held, pkg, work, beat, settings)
        return None
    except ProblemError as exc:
        return exc.to_problem()
    except Superseded:
        raise
    except Exception as exc:  # a bug must still end the onboarding with a reason, not a stuck state
        log.exception("onboarding %s crashed", held.pkg_id)
        return problem(500, "Onboarding failed", f"internal error while onboarding ({type(exc).__name__}: {exc}); "
                       "report it with the package to the meao operators")
    finally:
        beat.halt.set()  # before the outcome's (fenced) writes: a beat racing them would only cry wolf


def _onboard(held: Claim, pkg: AppPackage, work: Path, beat: Heartbeat, settings: Settings) -> None:
    """Fetch (unless uploaded), process in ``work``, and record the package as ONBOARDED."""
    work.mkdir(parents=True, exist_ok=True)
    if pkg.onboarding_state == "CREATED":
        _fetch(held, pkg, work, beat, settings)
    elif not archive_path(held.pkg_id).exists():
        raise OnboardingError(f"the uploaded content of package {held.pkg_id} is missing from the package "
                              "store; upload the package again")
    values = process_package(archive_path(held.pkg_id), work, settings)
    beat.check()
    faults.point("onboard:extracted")
    beat.halt.set()  # _finish's writes are fenced and quick
    _finish(held, work / "content", values)


def _fetch(held: Claim, pkg: AppPackage, work: Path, beat: Heartbeat, settings: Settings) -> None:
    """Fetch ``appPkgPath`` into ``work``, check its digest, and move it into place while the claim holds."""
    held.set(onboarding_state="UPLOADING")
    part = work / "fetch.part"
    uri = pkg.app_pkg_path or ""
    digest, size = fetch_to(uri, part, pkg.checksum_algorithm, settings, on_chunk=beat.check)
    if not same_digest(digest, pkg.checksum_hash):
        # the digest meao computed is not shown: it would tell the caller about content it may not otherwise
        # see (a server only meao can reach, a file under MEAO_PKG_FILE_ROOT); the operator's log has it
        log.warning("package %s: %s digest of %s is %s, not %s", held.pkg_id, pkg.checksum_algorithm, uri,
                    digest, pkg.checksum_hash)
        raise OnboardingError(f"the {pkg.checksum_algorithm} digest of the package fetched from {uri} is not the "
                              f"checksum given at creation ({pkg.checksum_hash}); compute the checksum of the "
                              "published file again, or publish the file the checksum belongs to")
    faults.point("onboard:fetched")
    with session_scope() as session:  # the stamp locks the row: nobody supersedes us before the move
        held.stamp(session, onboarding_state="PROCESSING", package_size=size)
        part.replace(archive_path(held.pkg_id))


def _fail(held: Claim, failure: dict[str, Any]) -> None:
    """Back to CREATED with the reason, and the package's files deleted, only while the claim holds."""
    log.warning("onboarding %s failed: %s", held.pkg_id, failure.get("detail"))
    try:
        with session_scope() as session:
            held.stamp(session, onboarding_state="CREATED", onboarding_failure=failure, job_worker=None)
            shutil.rmtree(content_dir(held.pkg_id), ignore_errors=True)
            archive_path(held.pkg_id).unlink(missing_ok=True)
    except Superseded:
        log.warning("onboarding %s attempt %s was superseded; its failure is not recorded and nothing shared "
                    "is deleted", held.pkg_id, held.attempt)


def process_package(archive: Path, work: Path, settings: Settings) -> dict[str, Any]:
    """Open, verify and parse the package file ``archive`` into ``work/content``; the AppPkgInfo values."""
    target = work / "content"
    shutil.rmtree(target, ignore_errors=True)
    limits = ArchiveLimits(settings.max_unpacked_bytes, settings.max_compression_ratio,
                           settings.max_archive_members, settings.max_manifest_bytes)
    csar_path, sig = archive, SignatureResult.unsigned()
    if is_option2_envelope(csar_path):  # SOL004 security option 2: verify the whole CSAR first
        inner = work / "inner"
        shutil.rmtree(inner, ignore_errors=True)
        csar_path, sig = unwrap_option2(csar_path, inner, trusted_ca=_trusted_ca(settings, "an option 2 envelope"),
                                        max_bytes=settings.max_unpacked_bytes)
    sha256 = extract_archive(csar_path, target, limits)
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
    unlisted = unlisted_members(layout, manifest, sha256) if sig.signed or settings.require_signed else []
    policy_check(sig, require_signed=settings.require_signed, unlisted=unlisted, manifest_name=layout.manifest)
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
            raise OnboardingError(f"software image {img.file!r} (VDU {img.vdu_id}): its {algo} digest is not "
                                  f"the {img.checksum.hash} the AppD declares; fix the AppD's checksum or the image")
    return sw_image_info(img, utcnow())


def _finish(held: Claim, content: Path, values: dict[str, Any]) -> None:
    """ONBOARDED: move ``content`` into place and record the package, in one transaction, if still held."""
    pkg_id, appd_id = held.pkg_id, values["appd_id"]
    try:
        with session_scope() as session:
            held.stamp(session)  # locks the row first: the reaper cannot supersede us during the move
            tenant = session.scalar(select(AppPackage.tenant).where(AppPackage.id == pkg_id))
            other = session.scalars(select(AppPackage.id).where(  # appDIds are unique per tenant
                AppPackage.appd_id == appd_id, AppPackage.id != pkg_id, same_tenant(AppPackage.tenant, tenant))).first()
            if other:
                raise OnboardingError(f"appDId {appd_id} is already onboarded as application package {other}; "
                                      "delete that package first or give this AppD a new descriptor_id")
            _replace_dir(content, content_dir(pkg_id))
            # what attempts killed before us left behind, and this attempt's own scratch: gone before anyone
            # can see the package ONBOARDED (the row is locked by the stamp above: no later attempt exists)
            sweep_attempt_dirs(pkg_id)
            held.stamp(session, onboarding_state="ONBOARDED", operational_state="ENABLED",
                       onboarding_failure=None, job_worker=None, **values)
            pkg = session.get(AppPackage, pkg_id)
            session.refresh(pkg)
            emit_pkg_notification(session, pkg, "AppPackageOnBoarded")
    except IntegrityError as exc:
        raise OnboardingError(f"appDId {appd_id} is already onboarded by another package; delete that "
                              "package first or give this AppD a new descriptor_id") from exc
    log.info("package %s onboarded as appDId %s", pkg_id, appd_id)


def _replace_dir(new: Path, dest: Path) -> None:
    """Put ``new`` at ``dest``; a ``dest`` already there (an earlier attempt's) is removed."""
    if dest.exists():
        old = new.with_name("content.replaced")
        dest.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    new.rename(dest)


def reap_stale_onboardings(stale_after_s: float, *, include_unclaimed: bool = False) -> int:
    """Give up onboardings and uploads whose heartbeat is older than ``stale_after_s`` (database clock).

    A claimed attempt whose worker stopped beating is superseded by a new attempt, sent through the
    outbox in this transaction; the old worker's next write matches nothing. An upload that stopped
    (client gone, API process killed) goes back to CREATED with a failure saying to upload again. With
    ``include_unclaimed`` (start-up of an embedded worker, whose in-memory queue died with the previous
    process), unclaimed attempts are sent again too; a duplicate is harmless (the claim is a CAS).
    Every change is a compare-and-swap on what was read, so a worker that beats or finishes meanwhile
    wins. Returns the number of jobs sent.
    """
    settings = get_settings()
    sent = 0
    with session_scope() as session:
        stale = AppPackage.job_heartbeat_at < db_now(-stale_after_s)
        cond = [stale]
        if include_unclaimed:
            cond.append(AppPackage.job_started_at.is_(None) & AppPackage.onboarding_state.in_(("CREATED", "PROCESSING")))
        rows = session.execute(select(AppPackage.id, AppPackage.onboarding_attempt, AppPackage.onboarding_state,
                                      AppPackage.job_started_at.is_not(None)).where(
            AppPackage.onboarding_state.in_(ACTIVE), AppPackage.onboarding_failure.is_(None), or_(*cond))).all()
        for pkg_id, attempt, state, claimed in rows:
            seen = (AppPackage.id == pkg_id, AppPackage.onboarding_attempt == attempt,
                    AppPackage.onboarding_state == state, AppPackage.onboarding_failure.is_(None))
            if state == "UPLOADING" and not claimed:
                _give_up_upload(session, seen, stale)
            elif claimed:
                sent += _supersede(session, seen, stale, pkg_id, attempt, state, settings.catalogue_queue)
            elif include_unclaimed:  # otherwise a job waiting in its queue is the dispatcher's to send again
                outbox.add(session, ONBOARD_TASK, pkg_id, attempt, settings.catalogue_queue)
                sent += 1
    dispatcher.kick()
    if sent:
        log.warning("re-sent %d onboarding job(s) whose worker had vanished", sent)
    return sent


def _give_up_upload(session: Session, seen: tuple, stale: Any) -> None:
    session.execute(update(AppPackage).where(*seen, AppPackage.job_started_at.is_(None), stale).values(
        onboarding_state="CREATED", onboarding_failure=problem(
            400, "Upload interrupted", "the upload of the package content stopped before it completed (the "
            "client went away or the API process died); upload the package again")))


def _supersede(session: Session, seen: tuple, stale: Any, pkg_id: str, attempt: int, state: str, queue: str) -> int:
    """A new attempt replaces a claimed one whose worker stopped beating; 1 if it did (its job is written)."""
    moved = session.execute(update(AppPackage).where(*seen, AppPackage.job_started_at.is_not(None), stale).values(
        onboarding_attempt=attempt + 1, job_started_at=None, job_worker=None, job_heartbeat_at=db_now(),
        onboarding_state="CREATED" if state == "UPLOADING" else state)).rowcount == 1  # UPLOADING: fetch again
    if moved:
        log.warning("onboarding %s attempt %s: its worker stopped beating; attempt %s takes over", pkg_id, attempt,
                    attempt + 1)
        outbox.add(session, ONBOARD_TASK, pkg_id, attempt + 1, queue)
    return int(moved)


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
