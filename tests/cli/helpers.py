"""Run the OSS CLI as a subprocess, as an operator or a script would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import meao_free_environ

ROOT = Path(__file__).resolve().parents[2]
# The console script `pip install` made from pyproject.toml's [project.scripts], next to this Python:
# the tests run what an operator runs, so a broken entry point fails every CLI test.
MEAO_SCRIPT = Path(sys.executable).parent / "meao"


def client_env(endpoint: str | None, config_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no MEAO_* leaking in from the caller, a private config directory."""
    env = meao_free_environ()
    env.update({"XDG_CONFIG_HOME": str(config_home), "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"})
    if endpoint:
        env["MEAO_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def run_meao(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``meao ARGS…`` in a subprocess; stdout and stderr decoded as UTF-8 with any ``\r`` kept."""
    assert MEAO_SCRIPT.is_file(), f"{MEAO_SCRIPT} is missing: install meao into this venv (pip install -e '.[test]')"
    raw = subprocess.run([str(MEAO_SCRIPT), *args], env=env, cwd=ROOT, capture_output=True,
                         timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    return subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a run that must have succeeded (the failure message shows both streams)."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    """Parsed ``-f json`` output of a run that must have succeeded."""
    return json.loads(ok(result))


def failed(result: subprocess.CompletedProcess[str], code: int) -> str:
    """stderr of a run that must have exited with ``code`` and printed no traceback."""
    assert result.returncode == code, (f"exit {result.returncode}, expected {code}\nstdout:\n{result.stdout}\n"
                                       f"stderr:\n{result.stderr}")
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr
