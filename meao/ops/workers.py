"""The MEPM-V workers as Celery sees them: heartbeats, and what each worker reports it runs.

- :class:`HeartbeatMonitor` listens to the ``worker-heartbeat`` / ``worker-online`` / ``worker-offline``
  events every Celery worker sends (about every 2 s, even without ``-E``) and remembers when each
  worker was last heard of, in this process only.
- :func:`worker_readings` broadcasts ``meao_report`` (``mecpm.control``) and joins the replies with the
  heartbeats; running jobs are completed from their op occurrence (instance, step, since when).
- :func:`drain` / :func:`resume` broadcast ``meao_drain`` / ``meao_resume`` to one worker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kombu.exceptions import OperationalError

from meao.celery_app import celery_app
from meao.config import get_settings

log = logging.getLogger(__name__)
REPLY_TIMEOUT_S = 1.0  # the snapshot's report: a worker slower than this shows LOST until its next answer
# drain / resume: the operator waits for the answer, and a worker busy on a loaded machine may take more
# than a second to read its control queue; one late answer must not report "did not answer" for a worker
# that then drains (the broadcast returns as soon as the one reply arrives)
CONTROL_REPLY_TIMEOUT_S = 5.0
FORGET_AFTER_S = 120.0
DRAIN_SETTLE_S = 1.5  # > kombu's Redis brpop_timeout (1 s)  # a worker not heard of for this long is no longer listed


@dataclass
class RunningJob:
    """A job a worker executes now; lifecycle jobs carry their op occurrence's details."""

    task_id: str
    task: str
    args: list[Any]
    worker: str
    op_occ_id: str | None = None
    app_instance_id: str | None = None
    lcm_operation: str | None = None
    step: str | None = None
    since: Any = None  # when the occurrence entered PROCESSING
    queue: str | None = None


@dataclass
class WorkerReading:
    """One worker now."""

    name: str
    status: str  # online | draining | unresponsive | offline
    queues: list[str] = field(default_factory=list)
    pops: list[str] = field(default_factory=list)
    heartbeat_age_s: float | None = None
    concurrency: int | None = None
    jobs_done: int | None = None
    pid: int | None = None
    reserved: int = 0
    running: list[RunningJob] = field(default_factory=list)


class HeartbeatMonitor(threading.Thread):
    """Remembers the last heartbeat of each worker (event receiver on the broker)."""

    def __init__(self) -> None:
        super().__init__(name="meao-heartbeats", daemon=True)
        self.seen: dict[str, float] = {}
        self.offline: set[str] = set()
        self._halt = threading.Event()
        self._receiver: Any = None

    def _on_event(self, event: dict[str, Any]) -> None:
        host = event.get("hostname")
        if not host:
            return
        if event.get("type") == "worker-offline":
            self.offline.add(host)
        else:
            self.offline.discard(host)
        self.seen[host] = time.time()

    def run(self) -> None:
        handlers = {kind: self._on_event for kind in ("worker-heartbeat", "worker-online", "worker-offline")}
        while not self._halt.is_set():
            try:
                with celery_app.connection_for_read() as conn:
                    self._receiver = celery_app.events.Receiver(conn, handlers=handlers)
                    self._receiver.should_stop = self._halt.is_set()
                    self._receiver.capture(limit=None, timeout=None, wakeup=False)  # until should_stop
            except (OSError, OperationalError) as exc:  # broker down: keep trying, quietly
                log.warning("worker heartbeat monitor: %s; retrying in 5 s", exc)
                self._halt.wait(5)

    def stop(self) -> None:
        """Stop listening (within about a second)."""
        self._halt.set()
        if self._receiver is not None:
            self._receiver.should_stop = True

    def recent(self, within_s: float = 10.0) -> int:
        """How many online workers were heard of within ``within_s``."""
        now = time.time()
        return sum(1 for host, at in self.seen.items() if now - at <= within_s and host not in self.offline)


_monitor: HeartbeatMonitor | None = None
_monitor_lock = threading.Lock()


def heartbeat_monitor() -> HeartbeatMonitor | None:
    """This process's monitor, started on first use (none in the embedded mode: no separate workers)."""
    global _monitor
    if get_settings().embedded_broker:
        return None
    with _monitor_lock:
        if _monitor is None or not _monitor.is_alive():
            _monitor = HeartbeatMonitor()
            _monitor.start()
        return _monitor


def stop_heartbeat_monitor() -> None:
    """Stop the monitor if it runs."""
    with _monitor_lock:
        if _monitor is not None:
            _monitor.stop()


def _broadcast(command: str, destination: list[str] | None = None, limit: int | None = None,
               timeout: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from meao.ops.queues import broker_unavailable

    for attempt in (1, 2):
        try:
            replies = celery_app.control.broadcast(command, reply=True, timeout=timeout,
                                                   destination=destination, limit=limit)
            break
        except RedisConnectionError as exc:
            # a pooled connection the broker closed meanwhile ("Connection closed by server", met in the lab
            # after a PoP's link came back): the pool drops it, and a second attempt takes a fresh one
            if attempt == 2:
                raise broker_unavailable(exc) from exc
            log.info("broadcast %s: %s; trying again on a fresh connection", command, exc)
        except (OSError, OperationalError) as exc:
            raise broker_unavailable(exc) from exc
    merged: dict[str, Any] = {}
    for reply in replies or []:
        merged.update(reply)
    return merged


def _enrich(jobs: list[RunningJob]) -> None:
    from sqlalchemy import select

    from meao.db.models import AppLcmOpOcc
    from meao.db.session import read_scope
    from meao.jobs.contract import RUN_OP_TASK

    wanted = {str(job.args[0]) for job in jobs if job.task == RUN_OP_TASK and job.args}
    if not wanted:
        return
    t = AppLcmOpOcc.__table__.c
    with read_scope() as session:  # one query for every running job
        found = {row.id: row for row in session.execute(select(
            t.id, t.app_instance_id, t.lcm_operation, t.current_step, t.state_entered_time, t.queue)
            .where(t.id.in_(wanted)))}
    for job in jobs:
        op = found.get(str(job.args[0])) if job.task == RUN_OP_TASK and job.args else None
        if op is not None:
            job.op_occ_id, job.app_instance_id, job.lcm_operation = op.id, op.app_instance_id, op.lcm_operation
            job.step, job.since, job.queue = op.current_step, op.state_entered_time, op.queue


def worker_readings(pops_of: dict[str, list[str]] | None = None) -> list[WorkerReading]:
    """Every worker that answers now or sent a heartbeat recently (``pops_of``: ``queue_pops()``, when the
    caller has it already)."""
    from meao.ops.queues import queue_pops

    monitor = heartbeat_monitor()
    expected = monitor.recent() if monitor else 1
    replies = _broadcast("meao_report", limit=expected or None)
    now = time.time()
    pops_of = queue_pops() if pops_of is None else pops_of
    readings: dict[str, WorkerReading] = {}
    for name, report in replies.items():
        if not isinstance(report, dict) or "queues" not in report:
            continue  # an older worker without meao's commands
        queues = report["queues"] or report["drained_queues"]
        running = [RunningJob(task_id=r["id"], task=r["task"], args=r["args"], worker=name)
                   for r in report.get("running") or []]
        readings[name] = WorkerReading(
            name=name, status="draining" if report["draining"] else "online", queues=report["queues"],
            pops=sorted({pop for q in queues for pop in pops_of.get(q, [])}), concurrency=report["concurrency"],
            jobs_done=report["jobs_done"], pid=report["pid"], reserved=report["reserved"], running=running)
    if monitor:
        for name, at in list(monitor.seen.items()):
            age = now - at
            if name in readings:
                readings[name].heartbeat_age_s = age
            elif age <= FORGET_AFTER_S:
                status = "offline" if name in monitor.offline else "unresponsive"
                readings[name] = WorkerReading(name=name, status=status, heartbeat_age_s=age)
    elif readings:  # embedded: the worker is this process
        for reading in readings.values():
            reading.heartbeat_age_s = 0.0
    _enrich([job for r in readings.values() for job in r.running])
    return sorted(readings.values(), key=lambda r: r.name)


def _control(command: str, name: str) -> dict[str, Any]:
    from meao.problems import NotFound

    reply = _broadcast(command, destination=[name], limit=1, timeout=CONTROL_REPLY_TIMEOUT_S).get(name)
    if reply is None:
        raise NotFound(f"worker {name} did not answer within {CONTROL_REPLY_TIMEOUT_S:.0f} s; `meao workers list` shows "
                       "the workers that are up")
    return reply


def drain(name: str) -> dict[str, Any]:
    """Tell worker ``name`` to stop taking jobs; what it runs finishes.

    Returns once the worker's last poll of its queues has run out (kombu's Redis BRPOP waits up to a
    second); a message that poll still caught is put back on its queue, not run.
    """
    reply = _control("meao_drain", name)
    time.sleep(DRAIN_SETTLE_S)
    return reply


def resume(name: str) -> dict[str, Any]:
    """Tell a drained worker ``name`` to take jobs again."""
    return _control("meao_resume", name)
