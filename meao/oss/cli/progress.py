"""Progress on stderr: upload bytes and rate, the state of a followed operation, and the ``--wait`` options.

The status line is rewritten in place when stderr is a terminal or ``--progress`` is given; otherwise it
prints one line per state, which reads well in a log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from meao.oss.cli.invocation import meta, stack, store
from meao.oss.client.waiting import OnPoll

DEFAULT_WAIT_TIMEOUT = 1800


def progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress/--no-progress``: live progress on stderr [default: when stderr is a terminal]."""
    return click.option("--progress/--no-progress", default=None, expose_value=False, callback=store("progress"),
                        help="rewrite progress in place on stderr [default: when stderr is a terminal]")(func)


def wait_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--wait`` and ``--wait-timeout`` (and ``--progress``)."""
    return stack(progress_option(func), [
        click.option("--wait", is_flag=True, help="follow the operation until it ends; exit 1 if it fails"),
        click.option("--wait-timeout", type=click.FloatRange(min=0), default=DEFAULT_WAIT_TIMEOUT,
                     show_default=True, metavar="SECONDS", expose_value=False, callback=store("wait_timeout"),
                     help="give up waiting after this long (exit 6); 0 waits forever"),
    ])


def wait_timeout() -> float | None:
    """``--wait-timeout`` in seconds; None (wait forever) for 0."""
    value = meta().get("wait_timeout", DEFAULT_WAIT_TIMEOUT)
    return None if not value else float(value)


class StatusLine:
    """A status line on stderr: rewritten in place when live, else printed once per change of ``key``."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._width = 0
        self._key: str | None = None
        self._at = 0.0

    def show(self, text: str, key: str | None = None, *, force: bool = False) -> None:
        """Display ``text``; live updates are throttled to 10 per second unless ``force``."""
        if self.live:
            now = time.monotonic()
            if not force and now - self._at < 0.1:
                return
            self._at = now
            click.echo("\r" + text + " " * max(self._width - len(text), 0), err=True, nl=False)
            self._width = len(text)
        elif key is not None and key != self._key:
            self._key = key
            click.echo(text, err=True)

    def close(self) -> None:
        """End the live line so what follows starts on a new line."""
        if self.live and self._width:
            click.echo("", err=True)
            self._width = 0


@contextmanager
def status_line() -> Iterator[StatusLine]:
    """A status line, live as ``--progress`` says (default: when stderr is a terminal), closed at the end."""
    progress = meta().get("progress")
    line = StatusLine(progress if progress is not None else sys.stderr.isatty())
    try:
        yield line
    finally:
        line.close()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def upload_progress(line: StatusLine, name: str) -> Callable[[int, int], None]:
    """A ``progress_cb(sent, total)`` for an upload: bytes, percentage and rate on ``line``."""
    start = time.monotonic()

    def report(sent: int, total: int) -> None:
        rate = sent / max(time.monotonic() - start, 1e-3)
        pct = 100 * sent / total if total else 100
        line.show(f"uploading {name}: {_human(sent)} / {_human(total)} ({pct:3.0f}%) {_human(rate)}/s",
                  force=sent >= total)

    return report


def _state_poll(line: StatusLine, state_field: str, label: Callable[[dict[str, Any]], str]) -> OnPoll:
    def report(resource: dict[str, Any], elapsed: float) -> None:
        state = resource.get(state_field, "?")
        line.show(f"{label(resource)}: {state} ({elapsed:.0f}s)", key=state)

    return report


def package_poll(line: StatusLine) -> OnPoll:
    """Show the onboardingState of a followed package on ``line``."""
    return _state_poll(line, "onboardingState", lambda info: f"package {info.get('id')}")


def op_poll(line: StatusLine) -> OnPoll:
    """Show the operationState of a followed LCM operation occurrence on ``line``."""
    return _state_poll(line, "operationState", lambda op: f"{op.get('lcmOperation', 'operation')} {op.get('id')}")
