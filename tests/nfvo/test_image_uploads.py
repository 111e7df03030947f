"""Image uploads to a PoP are serialised per (cloud, checksum) through the database.

Concurrent first instantiations of a package on one PoP used to upload one image each and delete each
other's half-uploaded (saving) image. The "workers" here are threads with their own sessions sharing
one fake PoP and a real SQLite or PostgreSQL database, as worker processes at a PoP share them.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import update

from meao.db.clock import db_now
from meao.db.models import ImageUpload
from meao.db.session import session_scope
from meao.nfvo import image_claims
from meao.nfvo.fake import FakeVim, _Image
from meao.nfvo.vim import ImageSpec
from mecpm import flows
from tests.nfvo.helpers import SlowUploadVim, add_instance, add_package, context, vm_app

IMAGE_STEP = next(s for s in flows.flatten(flows.INSTANTIATE) if s.name == "image")


def _run_together(n: int, work) -> list[BaseException | None]:
    """Run ``work(i)`` in ``n`` threads released at once; each one's exception, or None."""
    start = threading.Barrier(n)

    def one(i: int) -> BaseException | None:
        start.wait()
        try:
            work(i)
        except Exception as exc:  # noqa: BLE001 — reported to the test
            return exc
        return None

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_first_instantiations_on_one_pop_upload_exactly_one_image(database: str, tmp_path: Path) -> None:
    appd, content = vm_app(tmp_path)
    pkg = add_package(appd)
    vim = SlowUploadVim(delay=0.3, cloud_name="pop-cloud")
    contexts = [context(vim, appd, content, pkg, add_instance(pkg, appd)) for _ in range(5)]

    errors = _run_together(len(contexts), lambda i: IMAGE_STEP.execute(contexts[i]))

    assert errors == [None] * len(contexts)
    assert [i.status for i in vim.images.values()] == ["active"], vim.images
    image_id = next(iter(vim.images))
    assert vim.uploads == 1
    assert all(ctx.resources["images"] == {appd.sw_images[0].id: image_id} for ctx in contexts)


def _claim_row(cloud: str, checksum: str, holder: str, age_s: float) -> None:
    """A claim as another worker left it: ``holder`` stamped it ``age_s`` seconds ago (database clock)."""
    with session_scope() as session:
        session.add(ImageUpload(cloud=cloud, checksum=checksum, holder=holder, heartbeat_at=db_now(-age_s)))


def _half_uploaded(vim: FakeVim, spec: ImageSpec) -> str:
    """A 'saving' image record at the fake PoP, as an upload in progress (or one that died) leaves it."""
    vim.images["half"] = _Image("half", spec.name, spec.checksum.key, {"pkg-other"}, status="saving")
    return "half"


def _spec(appd) -> ImageSpec:
    img = appd.sw_images[0]
    return ImageSpec(img.name, img.version, img.checksum, disk_format="qcow2")


def test_the_claim_of_a_crashed_uploader_expires_and_the_next_worker_takes_over(database: str, tmp_path: Path) -> None:
    appd, content = vm_app(tmp_path)
    pkg = add_package(appd)
    vim = FakeVim(cloud_name="pop-cloud")
    spec = _spec(appd)
    _claim_row("pop-cloud", spec.checksum.key, "dead-worker:1:abcd", age_s=120)  # lease: 60 s
    _half_uploaded(vim, spec)

    image_id = image_claims.ensure_image(vim, spec, lambda: (content / appd.sw_images[0].file).open("rb"), pkg,
                                         wait_s=5, poll_s=0.05)

    assert list(vim.images) == [image_id] and vim.images[image_id].status == "active"  # the dead upload's wreck went
    with session_scope() as session:
        row = session.get(ImageUpload, ("pop-cloud", spec.checksum.key))
        assert (row.holder, row.image_id) == (None, image_id)


def test_a_live_upload_is_waited_for_then_refused_with_a_clear_error_and_never_deleted(
        database: str, tmp_path: Path) -> None:
    appd, content = vm_app(tmp_path)
    pkg = add_package(appd)
    vim = FakeVim(cloud_name="pop-cloud")
    spec = _spec(appd)
    _claim_row("pop-cloud", spec.checksum.key, "worker-b:4242:beef", age_s=1)  # stamped just now: alive
    half = _half_uploaded(vim, spec)

    with pytest.raises(image_claims.ImageUploadBusy) as refused:
        image_claims.ensure_image(vim, spec, lambda: (content / appd.sw_images[0].file).open("rb"), pkg,
                                  wait_s=0.5, poll_s=0.05)

    assert refused.value.status == 503
    assert "worker-b:4242:beef" in refused.value.detail and "Retry the operation" in refused.value.detail
    assert half in vim.images and vim.images[half].status == "saving"


def test_an_uploader_whose_claim_was_taken_over_stops_sending(database: str) -> None:
    claim = image_claims.UploadClaim("pop-cloud", "sha-256:00", lease_s=0.4)
    claim.acquire("img", wait_s=1, poll_s=0.05)
    with session_scope() as session:  # another worker took it over (this one's heartbeats had stopped)
        session.execute(update(ImageUpload).values(holder="other:1:0"))
    stream = claim.guard(lambda: io.BytesIO(b"data"))()
    time.sleep(0.3)  # a heartbeat (every lease/4) finds the claim taken

    with pytest.raises(image_claims.ImageClaimLost, match="stopped sending"):
        stream.read(2)
    claim.release(None)
    with session_scope() as session:
        assert session.get(ImageUpload, ("pop-cloud", "sha-256:00")).holder == "other:1:0"  # not freed by the loser
