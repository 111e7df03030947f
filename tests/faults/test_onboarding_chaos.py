"""Onboarding under crashes and slow sources, on real processes (embedded broker and Redis).

Each test proves that whatever dies, and wherever, a package ends in a state an operator can act on:
ONBOARDED once, with one content directory and no temp files, or CREATED with a failure that says
what to do.
"""

from __future__ import annotations

import hashlib
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.faults.onboarding_stack import Meao, PackageServer


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from descriptors.examples.build import build_package

    return build_package("mec-minimal", tmp_path_factory.mktemp("pkg"))


def _create(meao: Meao, path: Path, uri: str) -> str:
    body = {"appPkgName": "chaos", "appPkgVersion": "1", "appPkgPath": uri,
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(path.read_bytes()).hexdigest()}}
    with meao.client() as c:
        resp = c.post("/app_packages", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _outcome(meao: Meao, pkg_id: str, timeout: float = 60) -> dict[str, Any]:
    """The package once ONBOARDED or back in CREATED with onboardingFailureDetails."""
    def ended() -> dict[str, Any] | None:
        info = meao.package(pkg_id)
        return info if info["onboardingState"] == "ONBOARDED" or info.get("onboardingFailureDetails") else None

    try:
        return wait_for(ended, timeout, 0.1, f"package {pkg_id} to end onboarding")
    except BaseException:
        print(meao.logs())
        raise


def _failed_fetch(meao: Meao, path: Path, server: PackageServer) -> str:
    """A package whose appPkgPath answers 404: CREATED with a failure, waiting for PUT package_content."""
    pkg_id = _create(meao, path, server.publish("missing.zip", path).replace("missing.zip", "nowhere.zip"))
    # a loopback server, reached through the tests' outbound allowance: its answer is not echoed
    assert "does not tell what it answered" in _outcome(meao, pkg_id)["onboardingFailureDetails"]["detail"]
    return pkg_id


def _put_half(meao: Meao, pkg_id: str, data: bytes) -> socket.socket:
    """Start PUT package_content announcing all of ``data``, send half of it, and keep the socket open."""
    sock = socket.create_connection(("127.0.0.1", meao.port))
    head = (f"PUT /app_pkgm/v1/app_packages/{pkg_id}/package_content HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/zip\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    sock.sendall(head + data[:len(data) // 2])
    wait_for(lambda: meao.package(pkg_id)["onboardingState"] == "UPLOADING", 10, 0.05, "the upload to start")
    return sock


def _upload_again_onboards(meao: Meao, pkg_id: str, data: bytes) -> None:
    with meao.client() as c:
        put = c.put(f"/app_packages/{pkg_id}/package_content", content=data,
                    headers={"Content-Type": "application/zip"})
    assert put.status_code == 202, put.text
    assert _outcome(meao, pkg_id)["onboardingState"] == "ONBOARDED"
    _assert_clean_store(meao, pkg_id)


def _assert_clean_store(meao: Meao, pkg_id: str) -> None:
    """One package file and one content directory: no temp file, no attempt's work directory."""
    assert sorted(p.name for p in (meao.package_store / pkg_id).iterdir()) == ["content", "package.zip"]


def _interrupted(meao: Meao, pkg_id: str) -> dict[str, Any]:
    info = _outcome(meao, pkg_id, 30)
    assert info["onboardingState"] == "CREATED", info
    detail = info["onboardingFailureDetails"]["detail"]
    assert "upload the package again" in detail, detail
    return info


def test_upload_cut_off_by_the_client_ends_created_and_a_new_upload_onboards(
        meao_under: Callable[..., Meao], minimal: Path, package_server: PackageServer) -> None:
    meao = meao_under()
    data = minimal.read_bytes()
    pkg_id = _failed_fetch(meao, minimal, package_server)
    _put_half(meao, pkg_id, data).close()
    _interrupted(meao, pkg_id)
    _upload_again_onboards(meao, pkg_id, data)


def test_upload_whose_api_process_is_killed_ends_created_and_a_new_upload_onboards(
        meao_under: Callable[..., Meao], minimal: Path, package_server: PackageServer) -> None:
    meao = meao_under()
    data = minimal.read_bytes()
    pkg_id = _failed_fetch(meao, minimal, package_server)
    sock = _put_half(meao, pkg_id, data)
    meao.kill("api")
    sock.close()
    meao.restart("api")
    _interrupted(meao, pkg_id)
    _upload_again_onboards(meao, pkg_id, data)


@pytest.mark.parametrize("point", ["onboard:fetched", "onboard:extracted"])
def test_worker_killed_mid_onboarding_is_run_again_to_one_clean_package(
        meao_under: Callable[..., Meao], minimal: Path, package_server: PackageServer, point: str) -> None:
    meao = meao_under()
    meao.hold(point)
    pkg_id = _create(meao, minimal, package_server.publish("minimal.zip", minimal))
    meao.kill_at(point, meao.job_process)
    meao.restart(meao.job_process)
    info = _outcome(meao, pkg_id)
    assert info["onboardingState"] == "ONBOARDED", info
    assert meao.row(pkg_id)["onboarding_attempt"] == 2, "the reaper gave the dead attempt up, once"
    _assert_clean_store(meao, pkg_id)


def test_slow_fetch_keeps_its_claim_alive_and_runs_once(
        meao_under: Callable[..., Meao], minimal: Path, package_server: PackageServer) -> None:
    """A fetch 2.5 times longer than MEAO_JOB_STALE_S is not taken for a dead one: its heartbeat goes on."""
    meao = meao_under()
    package_server.trickle_s = 5.0
    pkg_id = _create(meao, minimal, package_server.publish("slow.zip", minimal))
    info = _outcome(meao, pkg_id)
    assert info["onboardingState"] == "ONBOARDED", info
    assert package_server.gets["/slow.zip"] == 1, "a second attempt fetched the package again"
    assert meao.row(pkg_id)["onboarding_attempt"] == 1
    _assert_clean_store(meao, pkg_id)


def test_fetch_past_the_deadline_fails_with_the_reason(
        meao_under: Callable[..., Meao], minimal: Path, package_server: PackageServer) -> None:
    """A source that trickles forever (each read within the read timeout) is cut at MEAO_FETCH_DEADLINE_S."""
    meao = meao_under(MEAO_FETCH_DEADLINE_S="2")
    package_server.trickle_s = 8.0
    started = time.monotonic()
    pkg_id = _create(meao, minimal, package_server.publish("endless.zip", minimal))
    info = _outcome(meao, pkg_id)
    assert info["onboardingState"] == "CREATED", info
    assert "MEAO_FETCH_DEADLINE_S" in info["onboardingFailureDetails"]["detail"]
    assert time.monotonic() - started < 7, "the fetch was not cut at its deadline"
    assert not list((meao.package_store / pkg_id).glob("*")), "a failed fetch leaves no file behind"


@pytest.mark.parametrize("meao_under", ["redis"], indirect=True)  # the reaper must run beside the paused worker
def test_paused_worker_that_wakes_after_being_superseded_deletes_nothing(
        meao_under: Callable[..., Meao], minimal: Path, package_server: PackageServer) -> None:
    """A worker frozen past MEAO_JOB_STALE_S (SIGSTOP: a VM pause, a GC stall) is replaced; when it wakes,
    its next write is fenced out and the package another worker onboarded stays whole."""
    meao = meao_under()
    meao.hold("onboard:extracted")
    pkg_id = _create(meao, minimal, package_server.publish("paused.zip", minimal))
    at = meao.fault_dir / "at-onboard-extracted"
    wait_for(at.exists, 60, 0.05, "the worker to reach onboard:extracted")
    first = meao.procs["worker"]
    first.send_signal(signal.SIGSTOP)
    (meao.fault_dir / "hold-onboard-extracted").unlink()
    at.unlink()
    meao.start_worker()  # its reaper gives the frozen attempt up, and it runs the next one
    try:
        info = _outcome(meao, pkg_id)
        assert info["onboardingState"] == "ONBOARDED", info
    finally:
        first.send_signal(signal.SIGCONT)
    log = meao.base_dir / "worker.log"
    wait_for(lambda: "touches nothing shared" in log.read_text(), 20, 0.1, "the woken worker to stop")
    assert meao.row(pkg_id)["onboarding_attempt"] == 2
    _assert_clean_store(meao, pkg_id)
    with meao.client() as c:
        assert c.get(f"/app_packages/{pkg_id}/appd", headers={"Accept": "text/plain"}).status_code == 200
