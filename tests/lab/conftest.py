"""The distributed lab (deploy/lab) for tests: brought up by a module fixture, taken down after it.

The lab makes network namespaces, so its tests need root and ``ip``; under CI a missing capability fails
the run loudly, elsewhere the tests are skipped with what to do. A lab that was already up when a module
started is reused and left up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ci import in_ci
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "deploy" / "lab"
STATE = LAB / "state"
API = "http://10.213.0.10:8080"  # HAProxy in mlab-ctl, reached over the lab's bridge
ZONES = {"pop1": "az1", "pop2": "az2"}


def require_lab_capabilities(*tools: str) -> None:
    """Root, ``ip`` and the named tools, or fail (CI) / skip (elsewhere) with what is missing."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    missing += [tool for tool in ("ip", *tools) if shutil.which(tool) is None]
    if not missing:
        return
    msg = f"the lab needs {', '.join(missing)}; run the lab tests as root with iproute2 (and haproxy) installed"
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


def lab(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run deploy/lab/SCRIPT; fail the test with its output when it fails."""
    proc = subprocess.run(["bash", str(LAB / script), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        pytest.fail(f"deploy/lab/{script} {' '.join(args)} exit {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def lab_is_up(only: str | None = None) -> bool:
    env = {**os.environ, **({"MEAO_LAB_ONLY": only} if only else {})}
    return subprocess.run(["bash", str(LAB / "status.sh"), "-q"], env=env, check=False).returncode == 0


@pytest.fixture(scope="module")
def lab_net() -> Iterator[None]:
    """The lab's network and WAN proxies only (no services, no processes): quick to make."""
    require_lab_capabilities()
    was_up = lab_is_up("net")
    lab("up.sh", env={"MEAO_LAB_ONLY": "net"})
    yield
    if not was_up:
        lab("down.sh")


def in_netns(ns: str, code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` inside namespace ``ns`` (with its /etc/netns hosts file)."""
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="session")
def lab_full(clouds_yaml: Path) -> Iterator[None]:
    """The whole lab: services, HAProxy, two API processes, the PoPs' workers (the test bed runs). One per
    session: bringing it up costs ~20 s; a lab already up is reused and left up."""
    require_lab_capabilities("haproxy")
    was_up = lab_is_up()
    lab("up.sh", timeout=300)
    yield
    if not was_up:
        lab("down.sh")


@pytest.fixture(scope="session")
def api(lab_full: None) -> Iterator[httpx.Client]:
    """A client of the lab's API with the operator client up.sh made for mlab-oss."""
    creds = json.loads((STATE / "secrets" / "oauth-oss.json").read_text())

    def token() -> str | None:
        try:
            resp = httpx.post(f"{API}/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(creds["client_id"], creds["client_secret"]), timeout=5)
        except httpx.HTTPError:
            return None
        return resp.json()["access_token"] if resp.status_code == 200 else None

    with httpx.Client(base_url=API, timeout=60,
                      headers={"Authorization": f"Bearer {wait_for(token, 60, 0.5, 'a token from the lab')}"}) as c:
        yield c


def onboard(api: httpx.Client, tmp: Path, pkg_root: Path = STATE / "data" / "packages",
            name: str = "lab") -> dict[str, Any]:
    """Onboard the VM app example through ``api`` (a client of the API's root), its file put in ``pkg_root``
    (the control plane's MEAO_PKG_FILE_ROOT); the package, ONBOARDED."""
    from descriptors.examples.build import build_package

    zipped = build_package("mec-vm-app", tmp, appd_id=f"{name}-{uuid.uuid4().hex[:8]}")
    target = pkg_root / zipped.name
    shutil.copy(zipped, target)
    body = {"appPkgName": name, "appPkgVersion": "1", "appPkgPath": target.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(target.read_bytes()).hexdigest()}}
    resp = api.post("/app_pkgm/v1/app_packages", json=body)
    assert resp.status_code == 201, resp.text
    pkg_id = resp.json()["id"]

    def onboarded() -> dict[str, Any] | None:
        info = api.get(f"/app_pkgm/v1/app_packages/{pkg_id}").json()
        return info if info["onboardingState"] in ("ONBOARDED", "ERROR") else None

    info = wait_for(onboarded, 300, 0.5, "the package to be onboarded")
    assert info["onboardingState"] == "ONBOARDED", info
    return info


def start(api: httpx.Client, path: str, body: dict[str, Any]) -> str:
    resp = api.post(f"/app_lcm/v1{path}", json=body)
    assert resp.status_code == 202, resp.text
    return resp.headers["Location"].rsplit("/", 1)[-1]


def ended(api: httpx.Client, op_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        occ = api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()
        return occ if occ["operationState"] in ("COMPLETED", "FAILED", "FAILED_TEMP") else None

    return wait_for(final, 300, 0.5, f"operation {op_id} to end")


def worker_log(pop: str) -> str:
    return "".join((STATE / "log" / f"worker-{pop}-{i}.log").read_text(errors="replace")[-1500:] for i in (1, 2))


def remove(api: httpx.Client, iid: str) -> str | None:
    """The instance terminated and deleted, whatever a failed test left it in (an operation FAILED_TEMP is
    failed first, which rolls back what it made); what went wrong, if anything."""
    inst = api.get(f"/app_lcm/v1/app_instances/{iid}")
    if inst.status_code == 404:
        return None
    ops = api.get("/app_lcm/v1/app_lcm_op_occs", params={"filter": f"(eq,appInstanceId,{iid})"}).json()
    for op in ops:
        if op["operationState"] in ("STARTING", "PROCESSING"):
            ended(api, op["id"])
        if api.get(f"/app_lcm/v1/app_lcm_op_occs/{op['id']}").json()["operationState"] == "FAILED_TEMP":
            api.post(f"/app_lcm/v1/app_lcm_op_occs/{op['id']}/fail")
            ended_for_good(api, op["id"])
    if api.get(f"/app_lcm/v1/app_instances/{iid}").json()["instantiationState"] == "INSTANTIATED":
        occ = ended(api, start(api, f"/app_instances/{iid}/terminate", {"terminationType": "FORCEFUL"}))
        if occ["operationState"] != "COMPLETED":
            return f"terminating {iid}: {occ}"
    resp = api.delete(f"/app_lcm/v1/app_instances/{iid}")
    return None if resp.status_code == 204 else f"deleting {iid}: {resp.status_code} {resp.text}"


def ended_for_good(api: httpx.Client, op_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        occ = api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()
        return occ if occ["operationState"] in ("FAILED", "ROLLED_BACK", "COMPLETED") else None

    return wait_for(final, 300, 0.5, f"operation {op_id} to be failed")
