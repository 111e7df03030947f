"""Remote-control commands every MEPM-V worker answers on Celery's broadcast channel.

- ``meao_report``: what this worker consumes and runs now (its queues, the requests it executes and
  holds, concurrency, jobs done, whether it is draining) — the ops API's view of a worker comes from
  here and from the worker heartbeats, never from a table of ours.
- ``meao_drain``: stop taking new jobs from every queue; running (and already reserved) jobs finish.
- ``meao_resume``: consume again from the queues the drain stopped.
"""

from __future__ import annotations

from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import control_command, inspect_command

_drained: list[str] | None = None  # the queues this worker stopped consuming while draining


def _queues(consumer: Any) -> list[str]:
    return sorted(q.name for q in consumer.task_consumer.queues) if consumer.task_consumer else []


@inspect_command()
def meao_report(state: Any, **_: Any) -> dict[str, Any]:
    """This worker now: queues, running and reserved jobs, concurrency, jobs done, draining."""
    consumer = state.consumer
    stats = consumer.controller.stats()
    active = list(worker_state.active_requests)
    return {
        "queues": _queues(consumer),
        "draining": _drained is not None,
        "drained_queues": list(_drained or []),
        "concurrency": (stats.get("pool") or {}).get("max-concurrency"),
        "jobs_done": sum((stats.get("total") or {}).values()),
        "pid": stats.get("pid"),
        "running": [{"id": r.id, "task": r.name, "args": list(r.args or [])} for r in active],
        "reserved": max(0, len(worker_state.reserved_requests) - len(active)),
    }


@control_command()
def meao_drain(state: Any, **_: Any) -> dict[str, Any]:
    """Stop consuming every queue (remembering them for ``meao_resume``); running jobs finish."""
    global _drained
    consumer = state.consumer
    if _drained is None:
        _drained = _queues(consumer)
    for name in _drained:
        consumer.call_soon(consumer.cancel_task_queue, name)
    return {"ok": f"draining: no longer consuming {', '.join(_drained) or 'any queue'}; running jobs finish",
            "queues": list(_drained)}


@control_command()
def meao_resume(state: Any, **_: Any) -> dict[str, Any]:
    """Consume again the queues the last ``meao_drain`` stopped."""
    global _drained
    consumer = state.consumer
    queues, _drained = list(_drained or []), None
    for name in queues:
        consumer.call_soon(consumer.add_task_queue, name)
    return {"ok": f"consuming {', '.join(queues) or 'no drained queue'} again", "queues": queues}
