"""Handlers of meao's operations API (openapi/ops.yaml): MEC host inventory, capacity, placements, jobs."""

from __future__ import annotations

from typing import Any

from meao.api import paging
from meao.api.responses import JSON, Reply, base_url, created, no_content, ok
from meao.lcm import hosts, instances
from meao.lcm.free_capacity import free_capacity
from meao.wire import ops as wire


def list_mec_hosts() -> Reply:
    """GET /mec_hosts."""
    base = base_url()
    return ok([wire.mec_host(h, base) for h in hosts.all_hosts()])


def create_mec_host(body: dict[str, Any]) -> Reply:
    """POST /mec_hosts → 201 MecHost + Location; 409 when the id exists."""
    return created(wire.mec_host(hosts.create_host(wire.mec_host_document(body)), base_url()))


def get_mec_host(hostId: str) -> Reply:
    """GET /mec_hosts/{hostId}."""
    return ok(wire.mec_host(hosts.read_host(hostId), base_url()))


def put_mec_host(hostId: str, body: dict[str, Any]) -> Reply:
    """PUT /mec_hosts/{hostId}: replace (200) or create (201); 409 when it moves the cloud or queue of a host in use."""
    host, was_created = hosts.put_host(hostId, wire.mec_host_document(body))
    info = wire.mec_host(host, base_url())
    return created(info) if was_created else ok(info)


def delete_mec_host(hostId: str) -> Reply:
    """DELETE /mec_hosts/{hostId}: 409 while operations or application instances use it."""
    hosts.delete_host(hostId)
    return no_content()


def get_mec_host_capacity(hostId: str, refresh: bool = False) -> Reply:
    """GET /mec_hosts/{hostId}/capacity: what OpenStack says is free (cached briefly unless refresh)."""
    return ok(wire.mec_host_capacity(free_capacity(hostId, refresh=refresh)))


def get_placement(appLcmOpOccId: str) -> Reply:
    """GET /placements/{appLcmOpOccId}: the explained host selection of an instantiate."""
    return ok(wire.placement(instances.get_placement(appLcmOpOccId)))


# ------------------------------------------------------------------------- queues, workers, jobs
def list_queues() -> Reply:
    """GET /queues."""
    from meao.ops import jobs

    return ok([wire.queue_info(v) for v in jobs.queue_views()])


def get_queue(queueName: str) -> Reply:
    """GET /queues/{queueName}: with its waiting jobs."""
    from meao.ops import jobs

    return ok(wire.queue_info(jobs.queue_views(queueName)[0], with_waiting=True))


def purge_queue(queueName: str) -> Reply:
    """POST /queues/{queueName}/purge."""
    from meao.ops import jobs

    return ok(wire.purged_queue(queueName, jobs.purge(queueName)))


def list_workers() -> Reply:
    """GET /workers."""
    from meao.ops import jobs

    return ok([wire.worker_info(v) for v in jobs.worker_views()])


def drain_worker(workerName: str) -> Reply:
    """POST /workers/{workerName}/drain."""
    from meao.ops import workers

    return ok(wire.worker_control(workerName, workers.drain(workerName)))


def resume_worker(workerName: str) -> Reply:
    """POST /workers/{workerName}/resume."""
    from meao.ops import workers

    return ok(wire.worker_control(workerName, workers.resume(workerName)))


def list_jobs(state: str | None = None, queue: str | None = None, **_: Any) -> Reply:
    """GET /jobs: a page of them, with the ``Link`` to the next page."""
    from meao.ops import jobs

    page = paging.collect(lambda win: jobs.list_jobs(state, queue, win), wire.job, key=jobs.job_key)
    return page.items, 200, {**JSON, **paging.link_header(page, base_url())}


def get_metrics() -> Reply:
    """GET /metrics: Prometheus text exposition."""
    from meao.metrics import exposition

    body, content_type = exposition()
    return body.decode("utf-8"), 200, {"Content-Type": content_type}


# ------------------------------------------------------------------------------------- the console
def get_console() -> Reply:
    """GET /console: the browser console's snapshot, shared for MEAO_CONSOLE_REFRESH_S; 304 when unchanged."""
    from flask import request

    from meao import console
    from meao.api.security import current_principal, request_tenant

    body, etag = console.snapshot(request_tenant(), current_principal())
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if console.not_modified(request.headers.get("If-None-Match"), etag):
        from flask import Response  # no body, so no Content-Type for Connexion to pick among the spec's

        return Response(status=304, headers=headers)
    return body, 200, {**JSON, **headers}
