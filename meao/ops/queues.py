"""The job queues as the broker holds them: depth, oldest waiting job, the jobs themselves, purge.

Read straight from the broker (Redis lists that kombu keeps per queue and priority, or the in-process
``memory://`` queues of the embedded mode) — never from a table of our own that could drift. A queue's
PoPs are the MEC hosts whose ``queue`` it is; the catalogue queue belongs to no PoP.

Purging takes every waiting message off the queue atomically and ends the work each one stood for, so
nothing is left waiting for a job that will never come: a lifecycle operation goes to FAILED_TEMP (retry
re-sends it, fail rolls it back), an onboarding returns to CREATED with the reason.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meao.celery_app import ENQUEUED_AT_HEADER
from meao.config import get_settings
from meao.redaction import mask_url

PEEK_LIMIT = 200  # waiting jobs listed per queue; the depth is always exact
_SEP = "\x06\x16"  # kombu's separator between a queue name and its priority step
_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass(frozen=True)
class WaitingJob:
    """One message waiting in a queue."""

    task_id: str
    task: str
    args: list[Any]
    queue: str
    enqueued_at: float | None


@dataclass
class QueueReading:
    """One queue now."""

    name: str
    pops: list[str]
    depth: int
    oldest_age_s: float | None
    waiting: list[WaitingJob] = field(default_factory=list)


def _decode(raw: bytes | str | dict[str, Any], queue: str) -> WaitingJob | None:
    try:
        message = raw if isinstance(raw, dict) else json.loads(raw)
        headers = message.get("headers") or {}
        body = message.get("body")
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0] if isinstance(body, bytes | str) else (body or [[]])[0]
        sent = headers.get(ENQUEUED_AT_HEADER)
        return WaitingJob(task_id=str(headers.get("id") or ""), task=str(headers.get("task") or ""),
                          args=list(args), queue=queue, enqueued_at=float(sent) if sent else None)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None  # not a Celery task message: counted in the depth, not listed


class _RedisQueues:
    """kombu's Redis layout: a list per queue and priority step, LPUSH to enqueue, BRPOP to take."""

    def __init__(self, url: str) -> None:
        import redis

        from meao.transport import redis_ssl_options

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                           **(redis_ssl_options(get_settings()) or {}))

    @staticmethod
    def _keys(queue: str) -> list[str]:
        return [queue if pri == 0 else f"{queue}{_SEP}{pri}" for pri in _PRIORITY_STEPS]

    def read(self, queue: str, peek: int) -> tuple[int, list[Any]]:
        keys = self._keys(queue)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        for key in keys:
            pipe.lrange(key, -peek, -1) if peek else pipe.lindex(key, -1)
        replies = pipe.execute()
        depth = sum(replies[:len(keys)])
        raws: list[Any] = []
        for reply in replies[len(keys):]:
            if isinstance(reply, list):
                raws.extend(reversed(reply))  # oldest (rightmost) first
            elif reply is not None:
                raws.append(reply)
        return depth, raws

    def take_all(self, queue: str) -> list[Any]:
        keys = self._keys(queue)
        pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: nobody else pops in between
        for key in keys:
            pipe.lrange(key, 0, -1)
        for key in keys:
            pipe.delete(key)
        replies = pipe.execute()
        return [raw for reply in replies[:len(keys)] for raw in reversed(reply)]


class _MemoryQueues:
    """The embedded mode's ``memory://`` queues (this process only)."""

    @staticmethod
    def _queue(name: str) -> Any:
        from kombu.transport import memory

        return memory.Channel.queues.get(name)

    def read(self, queue: str, peek: int) -> tuple[int, list[Any]]:
        q = self._queue(queue)
        if q is None:
            return 0, []
        with q.mutex:
            items = list(q.queue)
        return len(items), items[:peek] if peek else items[:1]

    def take_all(self, queue: str) -> list[Any]:
        q = self._queue(queue)
        if q is None:
            return []
        with q.mutex:
            items = list(q.queue)
            q.queue.clear()
        return items


_backend: tuple[str, Any] | None = None
_backend_lock = threading.Lock()


def _queues() -> Any:
    global _backend
    url = get_settings().broker_url or "memory://"
    with _backend_lock:
        if _backend is None or _backend[0] != url:
            if url.startswith(("redis://", "rediss://", "unix://")):
                _backend = (url, _RedisQueues(url))
            elif url.startswith("memory"):
                _backend = (url, _MemoryQueues())
            else:
                from meao.problems import ProblemError

                raise ProblemError(f"reading queues is supported for Redis and the embedded broker, not {url}; "
                                   "use the broker's own tools (or Celery Flower)", status=501,
                                   title="Broker not supported")
        return _backend[1]


def broker_unavailable(exc: Exception) -> Exception:
    """The ProblemDetails (503) for a broker that does not answer; the URL is shown without its password."""
    from meao.problems import ProblemError

    url = mask_url(get_settings().broker_url or "memory://")
    return ProblemError(f"the job broker at {url} does not answer ({type(exc).__name__}: {exc}); start it or fix "
                        "MEAO_BROKER_URL, then ask again", status=503, title="Broker unavailable")


def queue_pops(hosts: Iterable[Any] | None = None) -> dict[str, list[str]]:
    """Every queue meao uses (catalogue first) → the MEC hosts (PoPs) it serves; of ``hosts`` (the
    inventory by id, when the caller has read it already) or of the inventory read now."""
    if hosts is None:
        from meao.lcm.hosts import all_hosts

        hosts = all_hosts()
    hosts = list(hosts)
    # as all_queues(): the catalogue queue, then every host's queue once, sorted
    pops: dict[str, list[str]] = {name: [] for name in [get_settings().catalogue_queue,
                                                        *sorted({h.queue for h in hosts})]}
    for host in hosts:
        pops.setdefault(host.queue, []).append(host.id)
    return pops


def queue_readings(names: Iterable[str] | None = None, *, peek: int = 0,
                   pops: dict[str, list[str]] | None = None) -> list[QueueReading]:
    """Depth and oldest job age of ``names`` (default: every queue), with up to ``peek`` waiting jobs
    (``pops``: ``queue_pops()``, when the caller has it already)."""
    import redis

    backend, now = _queues(), time.time()
    pops = queue_pops() if pops is None else pops
    readings = []
    for name in names or pops:
        try:
            depth, raws = backend.read(name, peek)
        except redis.RedisError as exc:
            raise broker_unavailable(exc) from exc
        jobs = [job for job in (_decode(raw, name) for raw in raws) if job]
        oldest = jobs[0].enqueued_at if jobs and depth else None
        readings.append(QueueReading(name=name, pops=pops.get(name, []), depth=depth,
                                     oldest_age_s=max(0.0, now - oldest) if oldest else None,
                                     waiting=jobs if peek else []))
    return readings


def known_queue(name: str) -> bool:
    """True when ``name`` is the catalogue queue or a MEC host's queue."""
    return name in queue_pops()


def purge(name: str) -> list[WaitingJob]:
    """Take every waiting job off queue ``name`` and end what each stood for; returns the jobs."""
    import redis

    from meao.catalogue.onboarding import abandon_unclaimed_onboarding
    from meao.jobs.contract import ONBOARD_TASK, RUN_OP_TASK
    from meao.lcm.lifecycle import abandon

    try:
        taken = _queues().take_all(name)
    except redis.RedisError as exc:
        raise broker_unavailable(exc) from exc
    jobs = [job for job in (_decode(raw, name) for raw in taken) if job]
    for job in jobs:
        reason = (f"its job was purged from queue {name} by an operator before a worker took it")
        if job.task == RUN_OP_TASK and len(job.args) == 2:
            abandon(str(job.args[0]), int(job.args[1]), reason)
        elif job.task == ONBOARD_TASK and len(job.args) == 2:
            abandon_unclaimed_onboarding(str(job.args[0]), int(job.args[1]), reason)
    return jobs
