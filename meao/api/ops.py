"""Handlers of meao's operations API (openapi/ops.yaml): MEC host inventory, capacity, placements."""

from __future__ import annotations

from typing import Any

from flask import request
from sqlalchemy import func, select

from meao.api import views
from meao.db.models import AppInstance, AppLcmOpOcc, MecHost
from meao.db.session import session_scope
from meao.lcm import hosts, selection
from meao.nfvo.vim import VimError, VimNotConfigured
from meao.problems import BadRequest, Conflict, NotFound, ProblemError

JSON = {"Content-Type": "application/json"}


def _base() -> str:
    return request.host_url.rstrip("/")


def list_mec_hosts():
    """GET /mec_hosts."""
    with session_scope() as session:
        return [views.mec_host(h, _base()) for h in hosts.list_hosts(session)], 200, JSON


def create_mec_host(body: dict[str, Any]):
    """POST /mec_hosts → 201 MecHost + Location; 409 when the id exists."""
    with session_scope() as session:
        if session.get(MecHost, body["id"]) is not None:
            raise Conflict(f"MEC host {body['id']} exists; use PUT /mec_hosts/{body['id']} to replace it")
        host = hosts.upsert_host(session, views.mec_host_doc(body))
        info = views.mec_host(host, _base())
    return info, 201, {**JSON, "Location": info["_links"]["self"]["href"]}


def get_mec_host(hostId: str):
    """GET /mec_hosts/{hostId}."""
    with session_scope() as session:
        return views.mec_host(hosts.get_host(session, hostId), _base()), 200, JSON


def put_mec_host(hostId: str, body: dict[str, Any]):
    """PUT /mec_hosts/{hostId}: replace (200) or create (201)."""
    if body.get("id", hostId) != hostId:
        raise BadRequest(f"the body's id {body.get('id')!r} differs from the path's {hostId!r}")
    with session_scope() as session:
        existed = session.get(MecHost, hostId) is not None
        host = hosts.upsert_host(session, views.mec_host_doc({**body, "id": hostId}))
        info = views.mec_host(host, _base())
    if existed:
        return info, 200, JSON
    return info, 201, {**JSON, "Location": info["_links"]["self"]["href"]}


def delete_mec_host(hostId: str):
    """DELETE /mec_hosts/{hostId}: 409 while application instances are placed on it."""
    with session_scope() as session:
        host = hosts.get_host(session, hostId)
        placed = session.scalar(select(func.count()).select_from(AppInstance).where(
            AppInstance.mec_host_id == hostId, AppInstance.instantiation_state == "INSTANTIATED"))
        if placed:
            raise Conflict(f"{placed} application instance(s) run on MEC host {hostId}; terminate them first")
        session.delete(host)
    return None, 204


def get_mec_host_capacity(hostId: str, refresh: bool = False):
    """GET /mec_hosts/{hostId}/capacity: what OpenStack says is free (cached briefly unless refresh)."""
    with session_scope() as session:
        host = hosts.get_host(session, hostId)
    try:
        cap, observed, cached = selection.cloud_capacity_entry(host.cloud, refresh=refresh)
    except VimNotConfigured:
        raise  # 409: the host names a cloud clouds.yaml lacks; the detail says what to fix
    except VimError as exc:
        raise ProblemError(f"the cloud {host.cloud} of MEC host {hostId} does not answer: {exc.detail}",
                           status=503, title="VIM unavailable") from exc
    best = selection.host_capacity(host)
    computes = [h for h in cap.hosts if not host.availability_zone or h.availability_zone == host.availability_zone]
    body = {"hostId": host.id, "cloud": host.cloud, "availabilityZone": host.availability_zone or "",
            "freeVcpus": best.free_vcpus if best else 0, "freeRamMb": best.free_ram_mb if best else 0,
            "freeDiskGb": best.free_disk_gb if best else 0,
            "quota": {"instancesLeft": cap.quota.instances, "coresLeft": cap.quota.vcpu,
                      "ramMbLeft": cap.quota.ram_mb},
            "computeHosts": [{"host": h.host, "availabilityZone": h.availability_zone, "vcpu": h.vcpu,
                              "ramMb": h.ram_mb, "diskGb": h.disk_gb} for h in computes],
            "observedAt": observed.isoformat().replace("+00:00", "Z"), "cached": cached}
    return body, 200, JSON


def get_placement(appLcmOpOccId: str):
    """GET /placements/{appLcmOpOccId}: the explained host selection of an instantiate."""
    with session_scope() as session:
        op = session.get(AppLcmOpOcc, appLcmOpOccId)
        if op is None or op.placement is None:
            raise NotFound(f"no placement decision is recorded for operation occurrence {appLcmOpOccId}")
        return {"appLcmOpOccId": op.id, **op.placement}, 200, JSON


# ------------------------------------------------------------------------- queues, workers, jobs
def list_queues():
    """GET /queues."""
    from meao.ops import jobs

    return [views.queue_info(v) for v in jobs.queue_views()], 200, JSON


def get_queue(queueName: str):
    """GET /queues/{queueName}: with its waiting jobs."""
    from meao.ops import jobs

    return views.queue_info(jobs.queue_views(queueName)[0], with_waiting=True), 200, JSON


def purge_queue(queueName: str):
    """POST /queues/{queueName}/purge."""
    from meao.ops import jobs

    purged = jobs.purge(queueName)
    return {"queue": queueName, "purged": len(purged), "jobs": [views.job(j) for j in purged]}, 200, JSON


def list_workers():
    """GET /workers."""
    from meao.ops import workers

    return [views.worker_info(r) for r in workers.worker_readings()], 200, JSON


def _worker_control(name: str, command) -> tuple[dict[str, Any], int, dict[str, str]]:
    reply = command(name)
    return {"worker": name, "message": str(reply.get("ok") or reply.get("error") or reply),
            "queues": list(reply.get("queues") or [])}, 200, JSON


def drain_worker(workerName: str):
    """POST /workers/{workerName}/drain."""
    from meao.ops import workers

    return _worker_control(workerName, workers.drain)


def resume_worker(workerName: str):
    """POST /workers/{workerName}/resume."""
    from meao.ops import workers

    return _worker_control(workerName, workers.resume)


def list_jobs(state: str | None = None, queue: str | None = None):
    """GET /jobs."""
    from meao.ops import jobs

    return [views.job(j) for j in jobs.list_jobs(state, queue)], 200, JSON


def get_metrics():
    """GET /metrics: Prometheus text exposition."""
    from meao.metrics import exposition

    body, content_type = exposition()
    return body.decode("utf-8"), 200, {"Content-Type": content_type}
