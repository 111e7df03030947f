"""Concurrent first uploads of one image to the real test bed's Glance give exactly one image.

Each "worker" is a thread with its own driver (its own OpenStack connections) and its own database
sessions, as worker processes at one PoP are; the claim in the database (SQLite or PostgreSQL) is all
they share. Without it each uploaded its own copy and deleted the others' half-uploaded ones.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Self

import openstack
import pytest

from meao.nfvo import image_claims
from meao.nfvo.openstack.driver import OpenStackVim
from meao.nfvo.vim import OWNER_TAG, PACKAGE_TAG_PREFIX, ImageSpec
from tests.nfvo.conftest import SESSION_CLOUD

pytestmark = pytest.mark.openstack
WORKERS = 4


class _SlowFile:
    """The package's image file, sent slowly (0.5 s a chunk) so the uploads would overlap."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")

    def read(self, size: int = -1) -> bytes:
        time.sleep(0.5)
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def test_concurrent_first_uploads_of_an_image_to_one_cloud_make_exactly_one_glance_image(
        database: str, session_clouds: Path, member: openstack.connection.Connection,
        image_file: tuple[Path, ImageSpec]) -> None:
    path, spec = image_file
    drivers = [OpenStackVim(SESSION_CLOUD, str(session_clouds)) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)

    def first_instantiation(i: int) -> str:
        start.wait()
        return image_claims.ensure_image(drivers[i], spec, lambda: _SlowFile(path), f"pkg-{i}", poll_s=0.2)

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            ids = list(pool.map(first_instantiation, range(WORKERS)))

        images = [i for i in member.image.images(tag=[OWNER_TAG]) if i.name.startswith(spec.name)]
        assert [(i.id, i.status) for i in images] == [(ids[0], "active")], images
        assert set(ids) == {ids[0]}
        assert {f"{PACKAGE_TAG_PREFIX}pkg-{i}" for i in range(WORKERS)} <= set(images[0].tags)
    finally:
        for image in member.image.images(tag=[OWNER_TAG]):
            if image.name.startswith(spec.name):
                member.image.delete_image(image, ignore_missing=True)
