"""Token buckets for the token endpoint: how many attempts a client id, or a source address, may make.

Each attempt at ``POST /oauth2/token`` costs a 16 MiB scrypt (``meao.auth.clients``), so a flood of
attempts, with known or made-up client ids, is a cheap CPU and memory attack on meao. The endpoint takes
one token from the bucket of the client id and one from the bucket of the source address *before* any
scrypt; a refused attempt costs a dictionary lookup. A failed authentication takes ``FAILURE_COST`` more,
so guessing a secret is slower than using one.

The buckets live in the memory of each serving process (``meao serve --workers N`` allows N times as
much); that is enough to bound the work one process does, which is what they are for. The table of
buckets is bounded: full buckets (the same as none) are dropped first, then the least recently used.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from typing import Any

FAILURE_COST = 4.0  # what a failed authentication takes on top of the attempt's one token


class Throttle:
    """Token buckets of ``burst`` tokens refilled at ``rate`` tokens per second, one per key."""

    MAX_KEYS = 10000

    def __init__(self, burst: int, rate: float, clock: Any = time.monotonic) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # key → (tokens, when), least recently used first
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._levels.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._levels.pop(key, None)  # re-inserted last: the dict's order is the least recently used first
        self._levels[key] = (tokens, now)
        if len(self._levels) > self.MAX_KEYS:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full = [key for key in self._levels if self._level(key, now) >= self.burst]
        for key in full:
            del self._levels[key]
        for key in list(self._levels)[:max(0, len(self._levels) - self.MAX_KEYS // 2)]:
            del self._levels[key]

    def take(self, keys: Iterable[str]) -> int:
        """Take one token from the bucket of every key and return 0, or, when one of them is empty, take
        nothing and return the whole seconds until all of them hold a token again (for ``Retry-After``)."""
        keys = list(keys)
        with self._lock:
            now = self.clock()
            levels = {key: self._level(key, now) for key in keys}
            short = max((1.0 - level for level in levels.values()), default=0.0)
            if short > 0:
                return max(1, math.ceil(short / self.rate))
            for key, level in levels.items():
                self._store(key, level - 1.0, now)
        return 0

    def charge(self, keys: Iterable[str], cost: float = FAILURE_COST) -> None:
        """Take ``cost`` more tokens from the buckets of ``keys`` (down to empty): a failed attempt."""
        with self._lock:
            now = self.clock()
            for key in keys:
                self._store(key, max(0.0, self._level(key, now) - cost), now)
