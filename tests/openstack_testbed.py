"""The real OpenStack test bed (deploy/testbed) for integration tests: started once, reused, never mocked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTBED = ROOT / "deploy" / "testbed"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def testbed_state() -> Path:
    """Where deploy/testbed keeps state and clouds.yaml (the same default as deploy/testbed/lib.sh)."""
    if os.environ.get("MEAO_TESTBED_STATE"):
        return Path(os.environ["MEAO_TESTBED_STATE"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "meao-testbed"


def ensure_testbed() -> Path:
    """Bring the test bed up when it is down; return its clouds.yaml. Fails loudly when it cannot start."""
    if subprocess.run(["bash", str(TESTBED / "status.sh"), "-q"], check=False, capture_output=True).returncode != 0:
        if os.environ.get("MEAO_SKIP_OPENSTACK") == "1" and not IN_CI:
            pytest.skip("MEAO_SKIP_OPENSTACK=1: the OpenStack test bed is not started")
        proc = subprocess.run(["bash", str(TESTBED / "up.sh")], check=False, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            pytest.fail(f"the OpenStack test bed did not come up (deploy/testbed/up.sh exit {proc.returncode}):\n"
                        f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    clouds = testbed_state() / "clouds.yaml"
    if not clouds.exists():
        pytest.fail(f"the test bed reports up but {clouds} is missing")
    return clouds
