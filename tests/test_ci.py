"""tests/ci.py is the one definition of "under CI", for pytest and for tests/run.sh."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.ci import in_ci
from tests.conftest import ROOT


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("TRUE", True), ("1", True), ("yes", True),
                                                 ("True", True), ("", False), ("0", False), ("false", False)])
def test_every_ci_value_counts_the_same_in_python_and_in_run_sh(value: str, expected: bool) -> None:
    assert in_ci({"CI": value}) is expected
    env = {**os.environ, "CI": value}
    run = subprocess.run([sys.executable, "-m", "tests.ci"], check=False, cwd=ROOT, env=env)
    assert run.returncode == (0 if expected else 1)
