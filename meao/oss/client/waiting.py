"""One poller for everything the client follows (onboardings, LCM operations), instead of a loop per caller."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meao.oss.client.errors import WaitTimeout

#: called after each read with the resource and the seconds since the first read
OnPoll = Callable[[dict[str, Any], float], None]


def wait_for(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], *, kind: str,
             timeout: float | None, on_poll: OnPoll | None = None,
             interval: float = 0.25, max_interval: float = 2.0) -> dict[str, Any]:
    """Poll ``fetch()`` until ``done(resource)``; ``on_poll(resource, elapsed)`` after each read.

    ``timeout`` None waits forever; otherwise ``WaitTimeout`` carries the last resource read.
    """
    start = time.monotonic()
    while True:
        resource = fetch()
        elapsed = time.monotonic() - start
        if on_poll is not None:
            on_poll(resource, elapsed)
        if done(resource):
            return resource
        if timeout is not None and elapsed >= timeout:
            raise WaitTimeout(kind, resource, elapsed)
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)
