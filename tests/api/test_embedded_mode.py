"""Zero-setup mode: `meao serve` with no configuration at all runs jobs in-process on SQLite."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import sha256
from tests.conftest import SubscriberServer, free_port, meao_free_environ, wait_for


@pytest.fixture()
def bare_env(tmp_path: Path) -> dict[str, str]:
    env = meao_free_environ()
    env.update({"PYTHONUNBUFFERED": "1", "MEAO_AUTH": "none"})
    return env


def _serve(tmp_path: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    log = (tmp_path / "serve.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _requests(port: int, operation: str) -> float:
    """``meao_http_requests_total`` of ``operation`` (200s), as one scrape of ``/ops/v1/metrics`` sees it."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/ops/v1/metrics").text
    return sum(s.value for family in text_string_to_metric_families(text) if family.name == "meao_http_requests"
               for s in family.samples if s.name == "meao_http_requests_total"
               and s.labels.get("operation") == operation and s.labels.get("status") == "200")


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


def test_serve_workers_answers_from_several_processes_and_runs_jobs_once_in_the_parent(
        tmp_path: Path, bare_env: dict[str, str], subscriber: SubscriberServer) -> None:
    """``meao serve --workers 2``: two web processes on one port; a job a web process writes is run by
    the parent's embedded worker, woken at once: the periodic dispatch is set to 10 minutes, so only the
    wake can send it, and a web process that sent it itself (to its own in-memory queue, which no worker
    reads) would leave it unsent. A web process that dies is replaced while the other answers."""
    import psutil

    from descriptors.examples.build import build_package

    pkgs = [build_package("mec-minimal", tmp_path / f"pkgs{i}", appd_id=str(uuid.uuid4())) for i in range(4)]
    for i, pkg in enumerate(pkgs):
        subscriber.files[f"/embedded/workers{i}.csar"] = str(pkg)
    port = free_port()
    base = f"http://127.0.0.1:{port}/app_pkgm/v1"
    env = {**bare_env, "MEAO_JOB_DISPATCH_INTERVAL_S": "600"}
    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port), "--workers", "2"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)

    def web_processes() -> list[psutil.Process]:
        return [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]

    try:
        wait_for(lambda: _up(base) and len(web_processes()) == 2, 60, 0.2, "two web processes to answer")
        created = [httpx.post(f"{base}/app_packages", json={  # over both web processes
            "appPkgName": f"w{i}", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/embedded/workers{i}.csar",
            "checksum": {"algorithm": "SHA-256", "hash": sha256(pkg)}}).json() for i, pkg in enumerate(pkgs)]
        for pkg_info in created:
            wait_for(lambda p=pkg_info: httpx.get(f"{base}/app_packages/{p['id']}").json()["onboardingState"]
                     == "ONBOARDED", 30, what="onboarding by the parent's worker, woken by a web process")

        victim = web_processes()[0]
        victim.kill()
        victim.wait(10)
        wait_for(lambda: len(web_processes()) == 2 and victim.pid not in {c.pid for c in web_processes()}, 30,
                 0.2, "the dead web process to be replaced")
        assert all(httpx.get(f"{base}/app_packages").status_code == 200 for _ in range(20))

        # /ops/v1/metrics counts every process's requests (the dead one's too), whichever answers: once both
        # listen, 30 reads on fresh connections spread over both, and each scrape sees all 30 (one
        # process's share would be about half, and scrapes answered by different processes would disagree)
        def listening(proc: psutil.Process) -> bool:
            return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in proc.net_connections("tcp"))

        wait_for(lambda: all(listening(c) for c in web_processes()), 30, 0.2, "both web processes to listen")
        before = [_requests(port, "app_pkgm.get_package") for _ in range(4)]
        assert len(set(before)) == 1, f"scrapes disagree: {before}"
        for i in range(30):
            assert httpx.get(f"{base}/app_packages/{created[i % 4]['id']}").status_code == 200
        after = [_requests(port, "app_pkgm.get_package") for _ in range(4)]
        assert after == [before[0] + 30] * 4, f"before {before[0]}, after {after}"
    finally:
        proc.terminate()
        proc.wait(30)
    assert not [c for c in psutil.process_iter(["ppid"]) if c.info["ppid"] == proc.pid], "no orphans"

