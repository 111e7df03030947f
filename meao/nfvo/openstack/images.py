"""Glance: images found by checksum, streamed in with the checksum verified, shared per package."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any, BinaryIO

from meao.nfvo.openstack.base import CloudParts
from meao.nfvo.vim import (
    CHECKSUM_TAG_PREFIX,
    OWNER_TAG,
    PACKAGE_TAG_PREFIX,
    Checksum,
    ImageSpec,
    OpenStream,
    VimError,
)

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class _ChecksummingReader:
    """Streams an image file to Glance in chunks, hashing what it sends."""

    def __init__(self, stream: BinaryIO, algorithm: str) -> None:
        self._stream = stream
        self._hash = hashlib.new(algorithm)
        self.sent = 0

    def read(self, size: int = _CHUNK) -> bytes:
        data = self._stream.read(size if size and size > 0 else _CHUNK)
        self._hash.update(data)
        self.sent += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(_CHUNK):
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _hashlib_name(algorithm: str) -> str:
    """SOL 001 writes "sha-256"; hashlib wants "sha256"."""
    name = algorithm.lower().replace("-", "").replace("_", "")
    if name not in hashlib.algorithms_available:
        raise VimError(f"checksum algorithm '{algorithm}' is not supported; use sha-256 or sha-512 in "
                       f"the AppD's swImageDescriptor.", status=422, title="Unsupported checksum")
    return name



class Images(CloudParts):
    """Image methods of the driver."""

    def find_image_by_checksum(self, checksum: Checksum) -> str | None:
        image = self._image_with_checksum(checksum, active_only=True)
        return image.id if image else None

    def _image_with_checksum(self, checksum: Checksum, active_only: bool) -> Any:
        with self._do("looking up images by checksum"):
            for image in self._conn.image.images(tag=[OWNER_TAG, CHECKSUM_TAG_PREFIX + checksum.key]):
                if image.owner == self._conn.current_project_id and (
                        image.status == "active" or not active_only):
                    return image
        return None

    def ensure_image(self, image: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        existing = self._image_with_checksum(image.checksum, active_only=False)
        if existing is not None and existing.status != "active":
            # A record without data: an upload that died half-way. Start again.
            log.info("deleting stale %s image %s (%s)", existing.status, existing.name, existing.id)
            self._delete_image(existing.id)
            existing = None
        if existing is not None:
            if PACKAGE_TAG_PREFIX + package_id not in (existing.tags or []):
                with self._do(f"recording package {package_id} on image {existing.id}"):
                    self._conn.image.add_tag(existing, PACKAGE_TAG_PREFIX + package_id)
            self._fit_minimums(existing, image)
            return existing.id
        return self._upload(image, open_stream, package_id)

    def _fit_minimums(self, existing: Any, spec: ImageSpec) -> None:
        """One image serves every package with its bytes: its min_ram and min_disk are the smallest any of
        them declares (Nova refuses a flavor below the image's minimums, and each package's flavor comes
        from its own AppD). Runs under the (cloud, checksum) upload claim, so updates do not race."""
        lower = {k: v for k, v, now in (("min_ram", spec.min_ram_mb, existing.min_ram),
                                         ("min_disk", spec.min_disk_gb, existing.min_disk))
                 if v is not None and now is not None and v < now}
        if lower:
            with self._do(f"lowering the minimums of image {existing.id} to {lower}"):
                self._conn.image.update_image(existing.id, **lower)

    def _upload(self, spec: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        algorithm = _hashlib_name(spec.checksum.algorithm)
        stream = open_stream()
        reader = _ChecksummingReader(stream, algorithm)
        name = f"{spec.name}-{spec.version}" if spec.version else spec.name
        action = f"uploading image {name}"
        try:
            with self._do(action):
                # openstacksdk deletes the image record itself when the upload fails.
                created = self._conn.image.create_image(
                    name, data=reader, disk_format=spec.disk_format, container_format=spec.container_format,
                    min_disk=spec.min_disk_gb, min_ram=spec.min_ram_mb, size=spec.size_bytes,
                    allow_duplicates=True, disable_vendor_agent=False,
                    tags=[OWNER_TAG, CHECKSUM_TAG_PREFIX + spec.checksum.key, PACKAGE_TAG_PREFIX + package_id],
                    meta={"meao_owned": "true", "meao_checksum": spec.checksum.key,
                          "meao_image_version": spec.version},
                )
        except VimError as exc:
            raise type(exc)(f"{exc.detail} (after {reader.sent} bytes; an interrupted upload leaves no "
                            f"image: onboard the package again)", status=exc.status) from exc
        finally:
            stream.close()
        if reader.hexdigest() != spec.checksum.hash.lower():
            self._delete_image(created.id)
            raise VimError(f"image {name}: the data sent ({reader.sent} bytes) has {spec.checksum.algorithm} "
                           f"{reader.hexdigest()}, not {spec.checksum.hash} as the AppD declares; the "
                           f"package is corrupt or the descriptor wrong.", status=422,
                           title="Image checksum mismatch")
        with self._do(f"waiting for image {name}"):
            active = self._conn.image.wait_for_status(
                self._conn.image.get_image(created.id), "active", failures=["killed", "deleted"], interval=min(self.poll_s, 0.25), wait=120)
        return active.id

    def release_image(self, image_id: str, package_id: str) -> bool:
        with self._do(f"releasing image {image_id}"):
            image = self._conn.image.find_image(image_id, ignore_missing=True)
            if image is None:
                return False
            tag = PACKAGE_TAG_PREFIX + package_id
            if tag in (image.tags or []):
                self._conn.image.remove_tag(image, tag)
            others = [t for t in image.tags or [] if t.startswith(PACKAGE_TAG_PREFIX) and t != tag]
            if others or OWNER_TAG not in (image.tags or []):
                return False
        self._delete_image(image_id)
        return True

    def _delete_image(self, image_id: str) -> None:
        with self._do(f"deleting image {image_id}"):
            self._conn.image.delete_image(image_id, ignore_missing=True)
