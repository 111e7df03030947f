"""Zero-setup mode: `meao serve` with no configuration at all runs jobs in-process on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import sha256
from tests.conftest import SubscriberServer, free_port, wait_for


@pytest.fixture()
def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEAO_")}
    env.update({"PYTHONUNBUFFERED": "1", "MEAO_AUTH": "none"})
    return env


def _serve(tmp_path: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    log = (tmp_path / "serve.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/app_packages", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_with_no_configuration_onboards_with_in_process_worker(
        tmp_path: Path, bare_env: dict[str, str], subscriber: SubscriberServer) -> None:
    from descriptors.examples.build import build_package

    pkg = build_package("mec-minimal", tmp_path / "pkgs")
    subscriber.files["/embedded/minimal.csar"] = str(pkg)
    port = free_port()
    base = f"http://127.0.0.1:{port}/app_pkgm/v1"
    proc = _serve(tmp_path, bare_env, port)
    try:
        wait_for(lambda: _up(base), 60, 0.2, "meao serve to answer")
        body = {"appPkgName": "m", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/embedded/minimal.csar",
                "checksum": {"algorithm": "SHA-256", "hash": sha256(pkg)}}
        created = httpx.post(f"{base}/app_packages", json=body).json()
        info = wait_for(lambda: (i := httpx.get(f"{base}/app_packages/{created['id']}").json())
                        ["onboardingState"] == "ONBOARDED" and i, 30, what="in-process onboarding")
        assert info["operationalState"] == "ENABLED"
        assert (tmp_path / "var" / "meao.db").exists(), "the default database is an SQLite file under ./var"
        assert (tmp_path / "var" / "packages" / created["id"] / "package.zip").exists()
        file_uri = dict(body, appPkgPath=pkg.as_uri())
        refused = httpx.post(f"{base}/app_packages", json=file_uri)
        assert refused.status_code == 400 and "MEAO_PKG_FILE_ROOT" in refused.json()["detail"]
    finally:
        proc.terminate()
        proc.wait(15)


def test_embedded_restart_resumes_onboarding_lost_with_the_memory_queue(
        tmp_path: Path, bare_env: dict[str, str], subscriber: SubscriberServer) -> None:
    """A package created just before the process died is onboarded by the next start (start-up reaper)."""
    from descriptors.examples.build import build_package
    from meao.config import load_settings, set_settings
    from meao.db.migrate import db_upgrade
    from meao.db.models import AppPackage
    from meao.db.session import session_scope

    pkg = build_package("mec-minimal", tmp_path / "pkgs")
    subscriber.files["/embedded/restart.csar"] = str(pkg)
    db_url = f"sqlite:///{tmp_path / 'var' / 'meao.db'}"
    set_settings(load_settings(MEAO_DATABASE_URL=db_url, MEAO_DATA_DIR=str(tmp_path / "var")))
    db_upgrade(db_url)
    with session_scope() as session:  # what a process leaves behind when it dies right after the 201
        row = AppPackage(app_pkg_name="r", app_pkg_version="1", checksum_algorithm="SHA-256",
                         checksum_hash=sha256(pkg), app_pkg_path=f"{subscriber.url}/embedded/restart.csar",
                         onboarding_attempt=1)
        session.add(row)
    port = free_port()
    base = f"http://127.0.0.1:{port}/app_pkgm/v1"
    proc = _serve(tmp_path, bare_env, port)
    try:
        wait_for(lambda: _up(base), 60, 0.2, "meao serve to answer")
        wait_for(lambda: httpx.get(f"{base}/app_packages/{row.id}").json()["onboardingState"] == "ONBOARDED",
                 30, what="the lost onboarding to be resumed")
    finally:
        proc.terminate()
        proc.wait(15)
