"""meao's operations API types (openapi/ops.yaml, a meao extension): MecHost, capacity, queues, workers, jobs.

The MEC host attributes follow MEC 003 clause 7.1.4.1 (a MEC host at an edge PoP). The service objects
rendered here come from ``meao.lcm`` and ``meao.ops``; they are read by attribute, so this module
depends on nothing above the models.
"""

from __future__ import annotations

from typing import Any

from meao.db.models import AppLcmOpOcc, MecHost
from meao.wire.fields import Field, compact, python_names, render
from meao.wire.links import link, mec_host_href
from meao.wire.times import iso

MEC_HOST = (
    Field("id", "id"),
    Field("name", "name"),
    Field("cloud", "cloud"),
    Field("region", "region"),
    Field("availabilityZone", "availability_zone"),
    Field("queue", "queue"),
    Field("location", "location"),
    Field("servedAreas", "served_areas"),
    Field("latencyMs", "latency_ms"),
    Field("services", "services"),
    Field("features", "features"),
    Field("networks", "networks"),
    Field("mepUrl", "mep_url"),
)

JOB = (
    Field("jobId", "task_id"),
    Field("task", "task"),
    Field("args", "args"),
    Field("state", "state"),
    Field("queue", "queue"),
    Field("pops", "pops"),
    Field("enqueuedAt", lambda j: iso(j.enqueued_at)),
    Field("worker", "worker"),
    Field("appLcmOpOccId", "op_occ_id"),
    Field("appInstanceId", "app_instance_id"),
    Field("lcmOperation", "lcm_operation"),
    Field("step", "step"),
    Field("since", lambda j: iso(j.since)),
    Field("error", "error"),
)


def _seconds(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def mec_host(host: MecHost, base: str) -> dict[str, Any]:
    """MecHost, with its self link."""
    return render(MEC_HOST, host, _links={"self": link(mec_host_href(base, host.id))})


def mec_host_document(body: dict[str, Any]) -> dict[str, Any]:
    """The inventory document (Python names) of a MecHost request body."""
    return python_names(MEC_HOST, body, drop=("_links",))


def mec_host_capacity(free: Any) -> dict[str, Any]:
    """HostCapacity, of a ``meao.lcm.free_capacity.FreeCapacity``: what the host's cloud has free."""
    host, cap, best = free.host, free.capacity, free.best
    return {"hostId": host.id, "cloud": host.cloud, "availabilityZone": host.availability_zone or "",
            "freeVcpus": best.free_vcpus if best else 0, "freeRamMb": best.free_ram_mb if best else 0,
            "freeDiskGb": best.free_disk_gb if best else 0,
            "quota": {"instancesLeft": cap.quota.instances, "coresLeft": cap.quota.vcpu,
                      "ramMbLeft": cap.quota.ram_mb},
            "computeHosts": [{"host": h.host, "availabilityZone": h.availability_zone, "vcpu": h.vcpu,
                              "ramMb": h.ram_mb, "diskGb": h.disk_gb} for h in free.compute_hosts],
            "observedAt": iso(free.observed), "cached": free.cached}


def placement(op: AppLcmOpOcc) -> dict[str, Any]:
    """PlacementDecision: the explained host selection recorded for an instantiate occurrence."""
    return {"appLcmOpOccId": op.id, **op.placement}


def job(j: Any) -> dict[str, Any]:
    """Job, of a ``meao.ops.jobs.Job``."""
    return render(JOB, j)


def queue_info(view: Any, *, with_waiting: bool = False) -> dict[str, Any]:
    """QueueInfo, of a ``meao.ops.jobs.QueueView`` (its waiting jobs only when asked for one queue)."""
    r = view.reading
    body = compact({"name": r.name, "pops": r.pops, "depth": r.depth, "oldestJobAgeSeconds": _seconds(r.oldest_age_s),
                    "running": [job(j) for j in view.running],
                    "recentFailures": [job(j) for j in view.recent_failures]})
    if with_waiting:
        body["waiting"] = [job(j) for j in view.waiting]
    return body


def purged_queue(name: str, purged: list[Any]) -> dict[str, Any]:
    """PurgeResult: the jobs taken off queue ``name``."""
    return {"queue": name, "purged": len(purged), "jobs": [job(j) for j in purged]}


def worker_info(view: Any) -> dict[str, Any]:
    """WorkerInfo, of a ``meao.ops.jobs.WorkerView``."""
    r = view.reading
    return compact({"name": r.name, "status": r.status, "queues": r.queues, "pops": r.pops,
                    "heartbeatAgeSeconds": _seconds(r.heartbeat_age_s), "concurrency": r.concurrency,
                    "jobsDone": r.jobs_done, "pid": r.pid, "reserved": r.reserved,
                    "running": [job(j) for j in view.running]})


def worker_control(name: str, reply: dict[str, Any]) -> dict[str, Any]:
    """WorkerControlResult: what worker ``name`` answered to drain or resume."""
    return {"worker": name, "message": str(reply.get("ok") or reply.get("error") or reply),
            "queues": list(reply.get("queues") or [])}


# ------------------------------------------------------------------------------------- the console
_WORKER_STATES = {"online": "ONLINE", "draining": "DRAINING"}  # unresponsive, offline: LOST


def _use(pair: tuple[int, int | None]) -> dict[str, Any]:
    return {"used": pair[0], "total": pair[1]}


def console_worker(r: Any) -> dict[str, Any]:
    """ConsoleWorker, of a ``meao.ops.workers.WorkerReading``."""
    return {"name": r.name, "state": _WORKER_STATES.get(r.status, "LOST"),
            "heartbeatAgeS": _seconds(r.heartbeat_age_s), "running": len(r.running)}


def console_pop(pop: Any) -> dict[str, Any]:
    """ConsolePop, of a ``meao.console.views.PopView``."""
    host, cap, reading = pop.host, pop.capacity, pop.queue
    return {"mecHostId": host.id, "queue": host.queue, "cloud": host.cloud, "zone": host.availability_zone,
            "capacity": None if cap is None else {"vcpus": _use(cap.vcpus), "ramMb": _use(cap.ram_mb),
                                                  "instances": _use(cap.instances)},
            "capacityError": pop.capacity_error,
            "queueDepth": reading.depth if reading else 0,
            "oldestWaitingAgeS": _seconds(reading.oldest_age_s) if reading else None,
            "workers": [console_worker(r) for r in pop.workers],
            "mep": {"state": pop.mep.state, "url": pop.mep.url, "detail": pop.mep.detail}}


def console_queue(row: Any) -> dict[str, Any]:
    """ConsoleQueue, of a ``meao.console.views.QueueRow``."""
    r = row.reading
    return {"name": r.name, "pops": r.pops, "waiting": r.depth, "running": row.running, "failed": row.failed,
            "oldestWaitingAgeS": _seconds(r.oldest_age_s)}


def _console_time(text: str | None) -> str | None:
    """A step log time (ISO 8601 with an offset) as the console's UTC ``…Z``."""
    return None if text is None else text.replace("+00:00", "Z")


def _duration(entry: dict[str, Any]) -> float | None:
    from datetime import datetime

    if not entry.get("started_at") or not entry.get("ended_at"):
        return None
    took = datetime.fromisoformat(entry["ended_at"]) - datetime.fromisoformat(entry["started_at"])
    return round(took.total_seconds(), 3)


def console_step(entry: dict[str, Any], op: Any) -> dict[str, Any]:
    """ConsoleStep, of an entry of ``AppLcmOpOcc.step_log`` (``meao.lcm.lifecycle``)."""
    from meao.lcm.lifecycle import step_state

    return {"name": entry.get("name"), "state": step_state(entry, op),
            "startedAt": _console_time(entry.get("started_at")), "endedAt": _console_time(entry.get("ended_at")),
            "durationS": _duration(entry), "worker": entry.get("worker"), "attempt": entry.get("attempt")}


def _problem(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return None
    return {k: error.get(k) for k in ("type", "title", "status", "detail", "instance") if error.get(k) is not None}


def console_operation(row: Any) -> dict[str, Any]:
    """ConsoleOperation, of a ``meao.console.views.OpRow``."""
    op = row.op  # a row of meao.console.views.OP_COLUMNS
    log = list(op.step_log or [])
    last_worker = next((e.get("worker") for e in reversed(log) if e.get("worker")), None)
    return {"id": op.id, "appInstanceId": op.app_instance_id, "appName": row.app_name,
            "lcmOperation": op.lcm_operation, "operationState": op.operation_state,
            "startTime": iso(op.start_time), "stateEnteredTime": iso(op.state_entered_time),
            "mecHostId": op.mec_host_id, "queue": op.queue, "worker": op.worker or last_worker,
            "attempt": op.attempt, "currentStep": op.current_step, "requestId": f"req-{op.id}",
            "steps": [console_step(e, op) for e in log], "error": _problem(op.error)}


def console_package(p: Any) -> dict[str, Any]:
    """ConsolePackage, of an ``app_package`` row."""
    return {"id": p.id, "appDId": p.appd_id, "appName": p.app_name, "appProvider": p.app_provider,
            "appSoftVersion": p.app_software_version, "appDVersion": p.appd_version,
            "onboardingState": p.onboarding_state, "operationalState": p.operational_state,
            "usageState": p.usage_state, "onboardingFailureDetails": _problem(p.onboarding_failure)}


def console_instance(i: Any) -> dict[str, Any]:
    """ConsoleInstance, of an ``app_instance`` row."""
    resources = i.resources or {}
    ports = resources.get("ports") or {}
    return {"id": i.id, "appInstanceName": i.name, "appName": i.app_name,
            "instantiationState": i.instantiation_state, "operationalState": i.operational_state,
            "mecHostId": i.mec_host_id, "serverId": resources.get("server_id"),
            "portIds": [str(p) for p in (ports.values() if isinstance(ports, dict) else ports)]}


def console_trends(t: Any) -> dict[str, Any]:
    """ConsoleTrends, of a ``meao.console.views.Trends``."""
    from meao.console.views import percentile

    def p(values: list[float], rank: float) -> float | None:
        return _seconds(percentile(values, rank))

    return {"windowS": t.window_s, "bucketS": t.bucket_s,
            "instantiateDurationS": [{"t": iso(start), "count": len(d), "p50": p(d, 50), "p95": p(d, 95)}
                                     for start, d in zip(t.starts, t.durations, strict=True)],
            "queueDepth": [{"queue": name, "points": [{"t": iso(start), "depth": n}
                                                      for start, n in zip(t.starts, depths, strict=True)]}
                           for name, depths in t.queue_depth.items()]}


def console_snapshot(s: Any) -> dict[str, Any]:
    """ConsoleSnapshot without its ``viewer`` (added per request), of a ``meao.console.views.Snapshot``."""
    return {"generatedAt": iso(s.generated_at), "pops": [console_pop(p) for p in s.pops],
            "queues": [console_queue(r) for r in s.queues],
            "operations": [console_operation(r) for r in s.operations],
            "packages": [console_package(p) for p in s.packages],
            "instances": [console_instance(i) for i in s.instances],
            "counts": {"packages": s.counts["packages"], "instances": s.counts["instances"],
                       "operationsByState": s.counts["operations_by_state"]},
            "trends": console_trends(s.trends)}


def console_viewer(principal: Any, tenant: str | None, open_scopes: list[str]) -> dict[str, Any]:
    """ConsoleViewer: who asks; without a token (an open operation) nobody, with ``open_scopes`` (every
    scope when MEAO_AUTH=none opens every operation)."""
    if principal is None:
        return {"subject": None, "scopes": open_scopes, "tenant": None, "operator": bool(open_scopes)}
    return {"subject": principal.subject, "scopes": sorted(principal.scopes), "tenant": tenant,
            "operator": bool(principal.operator)}
