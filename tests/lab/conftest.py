"""The distributed lab (deploy/lab) for tests: brought up by a module fixture, taken down after it.

The lab makes network namespaces, so its tests need root and ``ip``; under CI a missing capability fails
the run loudly, elsewhere the tests are skipped with what to do. A lab that was already up when a module
started is reused and left up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import in_ci

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "deploy" / "lab"


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
