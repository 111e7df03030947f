"""The onboarding reaper and the NULLs it relies on, in-process on a throwaway SQLite database.

The reaper finds onboardings whose worker vanished with ``onboarding_failure IS NULL``; a nullable JSON
column that stores Python None as the JSON text 'null' hides every such package from it for good.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import JSON, create_engine, select, text, update

from meao.config import get_settings, load_settings, set_settings
from meao.db.models import AppPackage, Base, Job, utcnow
from meao.db.session import session_scope
from meao.problems import problem


@pytest.fixture()
def catalogue_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings on a fresh migrated SQLite database; jobs stay in the outbox (no broker in this test)."""
    from meao.db.migrate import db_upgrade
    from meao.jobs import dispatcher

    before = get_settings()
    url = f"sqlite:///{tmp_path / 'meao.db'}"
    set_settings(load_settings(MEAO_DATABASE_URL=url, MEAO_DATA_DIR=str(tmp_path / "var")))
    db_upgrade(url)
    monkeypatch.setattr(dispatcher, "kick", lambda: None)
    try:
        yield url
    finally:
        set_settings(before)


def _failed_fetch_package() -> str:
    """A package whose first fetch failed: CREATED with a failure, ready for PUT package_content."""
    with session_scope() as session:
        pkg = AppPackage(app_pkg_name="p", app_pkg_version="1", checksum_algorithm="SHA-256",
                         checksum_hash="00" * 32, app_pkg_path="http://127.0.0.1:9/none.csar",
                         onboarding_attempt=1,
                         onboarding_failure=problem(422, "Onboarding failed", "fetching failed"))
        session.add(pkg)
        session.flush()
        return pkg.id


def test_uploaded_package_whose_worker_died_is_reaped_and_sent_again(catalogue_db: str) -> None:
    """PUT package_content clears the failure; the reaper must see it as SQL NULL, or PROCESSING is forever."""
    import hashlib

    from meao.catalogue.onboarding import reap_stale_onboardings
    from meao.catalogue.packages import upload_content

    pkg_id = _failed_fetch_package()
    data = b"PK\x05\x06" + b"\0" * 18  # an empty zip: content does not matter, only the checksum
    with session_scope() as session:
        session.execute(update(AppPackage).where(AppPackage.id == pkg_id)
                        .values(checksum_hash=hashlib.sha256(data).hexdigest()))
    upload_content(pkg_id, None, io.BytesIO(data))
    long_ago = utcnow() - timedelta(hours=1)
    with session_scope() as session:  # a worker claimed attempt 2, then was SIGKILLed an hour ago
        session.execute(update(AppPackage).where(AppPackage.id == pkg_id)
                        .values(job_started_at=long_ago, job_heartbeat_at=long_ago))
        failure_is_null = session.scalar(select(AppPackage.onboarding_failure.is_(None))
                                         .where(AppPackage.id == pkg_id))
    assert failure_is_null, "a cleared onboarding failure must be SQL NULL, not the JSON text 'null'"

    assert reap_stale_onboardings(60.0) == 1
    with session_scope() as session:
        pkg = session.get(AppPackage, pkg_id)
        assert (pkg.onboarding_state, pkg.onboarding_attempt) == ("PROCESSING", 3)
        jobs = session.scalars(select(Job.attempt).where(Job.subject == pkg_id, Job.state == "PENDING")).all()
    assert 3 in jobs, "the new attempt's job is in the outbox"


def test_every_nullable_json_column_stores_none_as_sql_null() -> None:
    """The trap of fault 1 anywhere else: a None that reads back as None but is not NULL to SQL."""
    trapped = [f"{table.name}.{col.name}" for table in Base.metadata.tables.values() for col in table.columns
               if isinstance(col.type, JSON) and col.nullable and not col.type.none_as_null]
    assert trapped == []


def test_migration_turns_stored_json_null_into_sql_null(tmp_path: Path) -> None:
    """Rows written before the fix hold 'null'; after the upgrade the reaper and filters see NULL."""
    from alembic import command
    from alembic.config import Config

    from meao.db.migrate import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0007")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO app_package (id, app_pkg_name, app_pkg_version, checksum_algorithm, "
                          "checksum_hash, onboarding_state, operational_state, usage_state, onboarding_attempt,"
                          " onboarding_failure, created_at, updated_at) VALUES ('p1', 'p', '1', 'SHA-256', "
                          "'00', 'PROCESSING', 'DISABLED', 'NOT_IN_USE', 2, 'null', '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO app_lcm_op_occ (id, app_instance_id, lcm_operation, operation_state, "
                          "state_entered_time, start_time, is_cancel_pending, error, attempt, run_kind) VALUES "
                          "('o1', 'i1', 'INSTANTIATE', 'PROCESSING', '2026-01-01', '2026-01-01', 0, 'null', 2, "
                          "'RUN')"))
    command.upgrade(cfg, "head")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT onboarding_failure IS NULL FROM app_package")).scalar() == 1
        assert conn.execute(text("SELECT error IS NULL FROM app_lcm_op_occ")).scalar() == 1
    engine.dispose()
