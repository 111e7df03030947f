"""A package's images at the PoPs are bookkept one row per (package, cloud, image), never lost.

Workers note images on several clouds at once; deleting the package must release every one of them.
Run on SQLite and PostgreSQL: SQLite ignores SELECT … FOR UPDATE, so a read-modify-write of one JSON
column there kept only one of the concurrent notes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from meao.catalogue import vim_images
from meao.catalogue.packages import delete_package
from meao.config import get_settings, set_settings
from meao.nfvo.drivers import forget_vims, get_vim
from meao.nfvo.vim import Checksum, ImageSpec
from tests.nfvo.helpers import add_package, vm_app

CLOUDS = [f"pop-{i}" for i in range(8)]
DATA = b"image" * 1000


@pytest.fixture()
def fake_vims(database: str) -> Iterator[None]:
    """MEAO_VIM_DRIVER=fake on top of the test database: one in-memory PoP per cloud name."""
    before = get_settings()
    set_settings(dataclasses.replace(before, vim=dataclasses.replace(before.vim, driver="fake")))
    forget_vims()
    yield
    forget_vims()
    set_settings(before)


def test_images_noted_concurrently_on_several_clouds_are_all_released_with_the_package(
        fake_vims: None, tmp_path: Path) -> None:
    appd, _ = vm_app(tmp_path)
    pkg = add_package(appd)
    spec = ImageSpec("app", "1", Checksum("sha-256", hashlib.sha256(DATA).hexdigest()))
    images = {cloud: get_vim(cloud).ensure_image(spec, lambda: io.BytesIO(DATA), pkg) for cloud in CLOUDS}
    start = threading.Barrier(len(CLOUDS))

    def note(cloud: str) -> None:
        start.wait()
        vim_images.note_image(pkg, cloud, images[cloud])  # what each worker's JobRecords.note_image does

    with ThreadPoolExecutor(len(CLOUDS)) as pool:
        list(pool.map(note, CLOUDS))
    delete_package(pkg, None)

    kept = {cloud: list(get_vim(cloud).images) for cloud in CLOUDS if get_vim(cloud).images}
    assert not kept, f"images the package's deletion did not release: {kept}"


INSERT_PACKAGE = ("INSERT INTO app_package (id, app_pkg_name, app_pkg_version, checksum_algorithm, checksum_hash, "
                  "onboarding_state, operational_state, usage_state, onboarding_attempt, created_at, updated_at, "
                  "appd_id)")


def _migrate(url: str, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from meao.db.migrate import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    getattr(command, direction)(cfg, revision)


def test_migration_moves_the_json_image_notes_into_rows_and_back(database: str) -> None:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import IntegrityError

    from meao.catalogue import vim_images
    from meao.db.session import get_engine, session_scope

    get_engine(database).dispose()
    _migrate(database, "downgrade", "0007")
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(text(INSERT_PACKAGE.replace("appd_id", "vim_images") + " VALUES ('p1', 'p', '1', 'SHA-256', 'x', "
                          "'ONBOARDED', 'ENABLED', 'NOT_IN_USE', 1, '2026-01-01', '2026-01-01', :images)"),
                     {"images": '{"pop-a": ["i1", "i2", "i1"], "pop-b": ["i3"]}'})
    _migrate(database, "upgrade", "head")

    with session_scope() as session:
        assert vim_images.images_by_cloud(session, "p1") == {"pop-a": ["i1", "i2"], "pop-b": ["i3"]}
    assert "vim_images" not in {c["name"] for c in inspect(engine).get_columns("app_package")}
    with pytest.raises(IntegrityError), engine.begin() as conn:  # uq_app_package_tenant_appd_id is still there
        for pkg_id in ("q1", "q2"):
            conn.execute(text(f"{INSERT_PACKAGE} VALUES ('{pkg_id}', 'p', '1', 'SHA-256', 'x', 'ONBOARDED', "
                              "'ENABLED', 'NOT_IN_USE', 1, '2026-01-01', '2026-01-01', 'same-appd')"))

    _migrate(database, "downgrade", "0007")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT vim_images FROM app_package WHERE id = 'p1'")).scalar_one()
    engine.dispose()
    back = json.loads(back) if isinstance(back, str) else back
    assert {k: sorted(v) for k, v in back.items()} == {"pop-a": ["i1", "i2"], "pop-b": ["i3"]}
    _migrate(database, "upgrade", "head")


def test_a_noted_image_maps_the_appd_software_image_for_the_grant(database: str, tmp_path: Path) -> None:
    """A Grant's vimAssets.softwareImages (MEC 010-2 clause 6.2.4.11) pair the AppD's software image descriptor
    id with the VIM's image: a note without the descriptor id (made before migration 0011) is left out until
    a later note of the same image names it."""
    from meao.db.session import session_scope

    appd, _ = vm_app(tmp_path)
    pkg = add_package(appd)
    vim_images.note_image(pkg, "pop-a", "glance-1")
    vim_images.note_image(pkg, "pop-b", "glance-2", "VDU1-image")
    with session_scope() as session:
        assert vim_images.images_at(session, pkg, "pop-a") == []
        assert vim_images.images_at(session, pkg, "pop-b") == [("VDU1-image", "glance-2")]
    vim_images.note_image(pkg, "pop-a", "glance-1", "VDU1-image")
    with session_scope() as session:
        assert vim_images.images_at(session, pkg, "pop-a") == [("VDU1-image", "glance-1")]
        assert vim_images.images_by_cloud(session, pkg) == {"pop-a": ["glance-1"], "pop-b": ["glance-2"]}
