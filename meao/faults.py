"""Fault-injection points for the chaos suite (tests/faults). Inert unless ``MEAO_TEST_FAULT_DIR`` is set.

A test makes a process misbehave at a named point by creating files in that directory:

- ``hold-<point>``: the process announces itself with ``at-<point>`` (holding its pid) and waits while the
  hold file exists, so the test can kill, stop or race it at a known place;
- ``kill-<point>``: the process SIGKILLs itself there (a crash between two writes, e.g. commit and send).

Points are named ``<where>`` or ``<where>:<detail>`` (``step:ports``, ``rollback:server``,
``lcm:after-commit``). In production the directory is unset and :func:`point` returns at once.
"""

from __future__ import annotations

import os
import signal
import time

from meao.config import get_settings


def point(name: str) -> None:
    """Pass fault-injection point ``name``: hold or die here if the test environment asks to."""
    where = get_settings().jobs.fault_dir
    if where is None:
        return
    tag = name.replace("/", "_").replace(":", "-")
    if (where / f"kill-{tag}").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    hold = where / f"hold-{tag}"
    if hold.exists():
        (where / f"at-{tag}").write_text(str(os.getpid()))
        while hold.exists():
            time.sleep(0.05)
