"""`meao mep serve` as an operator starts it: a PoP of the inventory, one or several processes on one port."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import yaml

from tests.conftest import free_port, meao_free_environ, wait_for


def _env(tmp_path: Path) -> dict[str, str]:
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(yaml.safe_dump({"mec_hosts": [{"id": "pop-x", "cloud": "nowhere"}]}))
    env = meao_free_environ()
    return {**env, "MEAO_DATA_DIR": str(tmp_path / "var"), "MEAO_MEC_HOSTS_FILE": str(hosts), "MEAO_AUTH": "none",
            "MEAO_VIM_DRIVER": "fake", "PYTHONUNBUFFERED": "1"}


def _serve(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "meao.cli", "mep", "serve", *args], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def test_an_unknown_host_is_refused_with_what_to_do(tmp_path: Path) -> None:
    proc = _serve(_env(tmp_path), tmp_path / "mep.log", "--host-id", "nowhere-pop", "--port", str(free_port()))
    assert proc.wait(60) != 0
    said = (tmp_path / "mep.log").read_text()
    assert "MEC host nowhere-pop is not in the inventory" in said and "mep_url" in said, said


def test_several_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(_env(tmp_path), tmp_path / "mep.log", "--host-id", "pop-x", "--port", str(port), "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / "mep.log").read_text()
            try:
                return httpx.get(f"{url}/mec_app_support/v1/timing/current_time", timeout=2).status_code == 401
            except httpx.HTTPError:
                return False

        wait_for(answers, 60, 0.2, "the MEP to answer")

        def listening() -> list[psutil.Process]:
            return [c for c in psutil.Process(proc.pid).children(recursive=True)
                    if any(conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
                           for conn in c.net_connections("tcp"))]

        wait_for(lambda: len(listening()) == 2, 60, 0.2, f"two processes listening on {port}")
        children = psutil.Process(proc.pid).children(recursive=True)
        creds = httpx.put(f"{url}/mm5/v1/app_instances/a1/credentials", json={"mecHostId": "pop-x"})
        assert creds.status_code == 200 and creds.json()["mecAppSupportUri"] == f"{url}/mec_app_support/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) is not None
    # the serving processes end before the parent; helpers of multiprocessing (its resource tracker) end
    # when their pipe to the parent closes, a moment later
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not [c for c in alive if c.status() != psutil.STATUS_ZOMBIE], alive
