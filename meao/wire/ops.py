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
