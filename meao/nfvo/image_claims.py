"""One uploader per image and cloud, whichever process or machine it runs in: the database is the lock.

Two first instantiations of a package on one PoP both find no image in Glance and both upload it;
each then takes the other's half-uploaded (queued/saving) image for the wreck of a dead upload and
deletes it. So :func:`ensure_image` runs :meth:`Vim.ensure_image` under a claim on (cloud, checksum):
a row of :class:`meao.db.models.ImageUpload` that one caller takes (an INSERT only one wins, or an
UPDATE of a claim that is free or whose holder stopped heartbeating), stamps with the database's clock
while it works, and frees with the image id it ended with. The others poll until the claim is theirs;
by then the image is active, and they only tag it with their package.

A holder that crashes stops heartbeating; once its lease has run out the next caller takes over, and
the driver removes the dead upload's leftover, which nobody is uploading any more. A holder that
cannot heartbeat (database unreachable) for half its lease stops sending data, so its upload ends
before anyone may take the claim over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import BinaryIO, Self

from sqlalchemy import or_, select, update

from meao.config import get_settings
from meao.db.clock import db_now
from meao.db.inserts import insert_if_absent
from meao.db.models import ImageUpload
from meao.db.session import session_scope
from meao.nfvo.vim import ImageSpec, OpenStream, Vim, VimError
from meao.problems import ProblemError

log = logging.getLogger(__name__)
_PROCESS = f"{socket.gethostname()}:{os.getpid()}"


class ImageUploadBusy(ProblemError, status=503, title="Image upload in progress"):
    """Another worker has been uploading the image to this cloud for longer than this one waits."""


class ImageClaimLost(VimError, status=503, title="Image upload claim lost"):
    """The uploader could not keep its claim alive, so it stopped sending rather than race a successor."""


def ensure_image(vim: Vim, spec: ImageSpec, open_stream: OpenStream, package_id: str, *,
                 wait_s: float | None = None, lease_s: float | None = None, poll_s: float = 0.5) -> str:
    """:meth:`Vim.ensure_image`, with no other caller working on this image at ``vim``'s cloud meanwhile.

    Waits at most ``wait_s`` (MEAO_IMAGE_UPLOAD_WAIT_S) for another uploader, then ImageUploadBusy.
    """
    settings = get_settings().vim
    claim = UploadClaim(vim.cloud_name, spec.checksum.key, lease_s or settings.image_lease_s)
    claim.acquire(f"{spec.name} {spec.version}".strip(), settings.image_wait_s if wait_s is None else wait_s,
                  poll_s)
    try:
        image_id = vim.ensure_image(spec, claim.guard(open_stream), package_id)
    except BaseException:
        claim.release(None)
        raise
    claim.release(image_id)
    return image_id


class UploadClaim:
    """This caller's claim on (cloud, checksum): taken, kept alive by a heartbeat thread, released."""

    def __init__(self, cloud: str, checksum: str, lease_s: float) -> None:
        self.cloud, self.checksum, self.lease_s = cloud, checksum, lease_s
        self.holder = f"{_PROCESS}:{uuid.uuid4().hex[:8]}"  # unique per call: threads of one process differ
        self._last_beat = 0.0  # monotonic time of the last stamp the database took
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _row(self) -> tuple:
        return ImageUpload.cloud == self.cloud, ImageUpload.checksum == self.checksum

    def acquire(self, what: str, wait_s: float, poll_s: float) -> None:
        """Take the claim, polling while another holder's is alive; ImageUploadBusy after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while not self._try_take():
            if time.monotonic() >= deadline:
                raise ImageUploadBusy(self._busy_detail(what, wait_s))
            time.sleep(poll_s)
        self._last_beat = time.monotonic()
        self._beat = threading.Thread(target=self._heartbeat, name=f"image-claim-{self.holder[-8:]}", daemon=True)
        self._beat.start()

    def _try_take(self) -> bool:
        with session_scope() as session:
            if insert_if_absent(session, ImageUpload, cloud=self.cloud, checksum=self.checksum,
                                holder=self.holder, heartbeat_at=db_now()):
                return True
            before = session.execute(select(ImageUpload.holder, ImageUpload.heartbeat_at).where(*self._row())).first()
            taken = session.execute(update(ImageUpload).where(
                *self._row(), or_(ImageUpload.holder.is_(None), ImageUpload.heartbeat_at < db_now(-self.lease_s)))
                .values(holder=self.holder, heartbeat_at=db_now())).rowcount == 1
        if taken and before is not None and before.holder is not None:
            log.warning("took over the upload of image %s to cloud %s from %s, silent since %s (crashed?)",
                        self.checksum, self.cloud, before.holder, before.heartbeat_at)
        return taken

    def _busy_detail(self, what: str, wait_s: float) -> str:
        with session_scope() as session:
            row = session.execute(select(ImageUpload.holder, ImageUpload.heartbeat_at).where(*self._row())).first()
        by = f"{row.holder} (last heartbeat {row.heartbeat_at})" if row is not None and row.holder else "another worker"
        return (f"image {what} ({self.checksum}) is being uploaded to cloud {self.cloud} by {by}; waited "
                f"{wait_s:.0f} s for it. Retry the operation once that upload has finished; if it hangs, look at "
                "that worker (MEAO_IMAGE_UPLOAD_WAIT_S bounds this wait).")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                with session_scope() as session:
                    kept = session.execute(update(ImageUpload).where(*self._row(), ImageUpload.holder == self.holder)
                                           .values(heartbeat_at=db_now())).rowcount == 1
            except Exception:  # the database may come back; still_held() decides meanwhile
                log.warning("heartbeat of the upload of image %s to cloud %s failed", self.checksum, self.cloud,
                            exc_info=True)
                continue
            if not kept:
                log.warning("the claim on uploading image %s to cloud %s was taken over", self.checksum, self.cloud)
                self._lost.set()
                return
            self._last_beat = time.monotonic()

    def still_held(self) -> bool:
        """Whether nobody can have taken the claim over: stamped recently enough, never found taken."""
        return not self._lost.is_set() and time.monotonic() - self._last_beat < self.lease_s / 2

    def guard(self, open_stream: OpenStream) -> OpenStream:
        """``open_stream``, whose streams stop the upload (ImageClaimLost) once the claim may be lost."""
        return lambda: _ClaimedStream(open_stream(), self)

    def release(self, image_id: str | None) -> None:
        """Free the claim, recording the image it ended with; never raises (a stuck claim just expires)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        values: dict[str, object] = {"holder": None, "heartbeat_at": None}
        if image_id:
            values["image_id"] = image_id
        try:
            with session_scope() as session:
                freed = session.execute(update(ImageUpload).where(*self._row(), ImageUpload.holder == self.holder)
                                        .values(**values)).rowcount == 1
        except Exception:  # the claim expires after its lease; the next caller takes it
            log.warning("could not free the claim on uploading image %s to cloud %s; it expires in %.0f s",
                        self.checksum, self.cloud, self.lease_s, exc_info=True)
            return
        if not freed:
            log.warning("the claim on uploading image %s to cloud %s had been taken over before it was freed",
                        self.checksum, self.cloud)


class _ClaimedStream:
    """An image file that refuses to be read once its uploader's claim may have passed to another."""

    def __init__(self, stream: BinaryIO, claim: UploadClaim) -> None:
        self._stream, self._claim = stream, claim

    def read(self, size: int | None = -1) -> bytes:
        if not self._claim.still_held():
            raise ImageClaimLost(
                f"uploading image {self._claim.checksum} to cloud {self._claim.cloud}: this worker could not keep "
                "its claim on the upload alive (database unreachable, or the claim taken over), so it stopped "
                "sending rather than race another uploader; retry the operation.")
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
