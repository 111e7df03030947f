"""ETSI JSON views: the only place that knows the camelCase wire names of package resources."""

from __future__ import annotations

from typing import Any

from meao.db.models import AppPackage, Subscription


def _links_base(base: str) -> str:
    return f"{base.rstrip('/')}/app_pkgm/v1"


def pkg_info(pkg: AppPackage, base: str) -> dict[str, Any]:
    """AppPkgInfo (MEC 010-2 clause 6.2.3.3); optional attributes are left out when unknown."""
    root = _links_base(base)
    self_href = f"{root}/app_packages/{pkg.id}"
    body: dict[str, Any] = {
        "id": pkg.id,
        "appDId": pkg.appd_id,
        "appProvider": pkg.app_provider or pkg.requested_provider,
        "appName": pkg.app_name,
        "appSoftwareVersion": pkg.app_software_version,
        "appDVersion": pkg.appd_version,
        "checksum": {"algorithm": pkg.checksum_algorithm, "hash": pkg.checksum_hash},
        "signingCertificate": pkg.signing_certificate,
        "softwareImages": pkg.software_images or None,
        "additionalArtifacts": pkg.additional_artifacts or None,
        "onboardingState": pkg.onboarding_state,
        "operationalState": pkg.operational_state,
        "usageState": pkg.usage_state,
        "mecInfo": pkg.mec_info or None,
        "userDefinedData": pkg.user_defined_data,
        "onboardingFailureDetails": pkg.onboarding_failure,
        "_links": {"self": {"href": self_href}, "appD": {"href": f"{self_href}/appd"},
                   "appPkgContent": {"href": f"{self_href}/package_content"}},
    }
    return {k: v for k, v in body.items() if v is not None}


def pkg_subscription_info(sub: Subscription, base: str) -> dict[str, Any]:
    """AppPkgSubscriptionInfo (clause 6.2.3.4)."""
    return {"id": sub.id, "subscriptionType": sub.subscription_type, "callbackUri": sub.callback_uri,
            "_links": {"self": {"href": f"{_links_base(base)}/subscriptions/{sub.id}"}}}


def pkg_subscription_link_list(subs: list[Subscription], base: str) -> dict[str, Any]:
    """AppPkgSubscriptionLinkList (clause 6.2.3.5)."""
    root = _links_base(base)
    return {"_links": {"self": {"href": f"{root}/subscriptions"},
                       "subscriptions": [{"href": f"{root}/subscriptions/{s.id}",
                                          "subscriptionType": s.subscription_type} for s in subs]}}


# ------------------------------------------------------------------------------------ lifecycle
def _lcm_root(base: str) -> str:
    return f"{base.rstrip('/')}/app_lcm/v1"


def _ts(value) -> dict[str, int]:
    from datetime import UTC

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ns = int(value.timestamp() * 1_000_000) * 1000
    return {"seconds": ns // 1_000_000_000, "nanoSeconds": ns % 1_000_000_000}


def app_instance_info(inst, host, base: str) -> dict[str, Any]:
    """AppInstanceInfo (MEC 010-2 clause 6.2.2.4); on the MEAO vnfInstanceId is the VIM server."""
    root = _lcm_root(base)
    self_href = f"{root}/app_instances/{inst.id}"
    links: dict[str, Any] = {"self": {"href": self_href}}
    body: dict[str, Any] = {
        "id": inst.id, "appInstanceName": inst.name, "appInstanceDescription": inst.description,
        "appDId": inst.appd_id, "appProvider": inst.app_provider, "appName": inst.app_name,
        "appSoftVersion": inst.app_soft_version, "appDVersion": inst.appd_version, "appPkgId": inst.app_pkg_id,
        "instantiationState": inst.instantiation_state,
    }
    resources = inst.resources or {}
    if inst.instantiation_state == "INSTANTIATED":
        state: dict[str, Any] = {"operationalState": inst.operational_state or "STARTED"}
        loc = (host.location or {}) if host is not None else {}
        if loc.get("countryCode"):
            state["appInstLocation"] = {"countryCode": loc["countryCode"]}
            if loc.get("latitude") is not None and loc.get("longitude") is not None:
                state["appInstLocation"]["geographicalPosition"] = {
                    "type": "Point", "coordinates": [loc["longitude"], loc["latitude"]]}
        body["instantiatedAppState"] = state
        if resources.get("server_id"):
            body["vnfInstanceId"] = resources["server_id"]
        links["terminate"] = {"href": f"{self_href}/terminate"}
        links["operate"] = {"href": f"{self_href}/operate"}
    else:
        links["instantiate"] = {"href": f"{self_href}/instantiate"}
    body["_links"] = links
    return {k: v for k, v in body.items() if v is not None}


def app_lcm_op_occ(op, base: str, *, full: bool = True) -> dict[str, Any]:
    """AppLcmOpOcc (clause 6.2.2.13), plus meao's ``error`` and ``appInstanceId``."""
    root = _lcm_root(base)
    body: dict[str, Any] = {
        "id": op.id, "operationState": op.operation_state, "stateEnteredTime": _ts(op.state_entered_time),
        "startTime": _ts(op.start_time), "lcmOperation": op.lcm_operation,
        "operationParams": op.operation_params if full else None, "isCancelPending": bool(op.is_cancel_pending),
        "cancelMode": op.cancel_mode if op.is_cancel_pending else None, "error": op.error,
        "appInstanceId": op.app_instance_id,
        "_links": {"self": {"href": f"{root}/app_lcm_op_occs/{op.id}"},
                   "appInstance": {"href": f"{root}/app_instances/{op.app_instance_id}"}},
    }
    return {k: v for k, v in body.items() if v is not None}


def lcm_subscription_info(sub, base: str) -> dict[str, Any]:
    """The *SubscriptionInfo of clause 6.2.2 matching the subscription's type."""
    body: dict[str, Any] = {"id": sub.id, "subscriptionType": sub.subscription_type,
                            "callbackUri": sub.callback_uri}
    body.update((sub.filters or [{}])[0] if sub.filters else {})
    body["_links"] = {"self": {"href": f"{_lcm_root(base)}/subscriptions/{sub.id}"}}
    return body


def lcm_subscription_link_list(subs, base: str) -> dict[str, Any]:
    """AppInstanceSubscriptionLinkList (clause 6.2.2.19)."""
    root = _lcm_root(base)
    return {"_links": {"self": {"href": f"{root}/subscriptions"},
                       "subscriptions": [{"href": f"{root}/subscriptions/{s.id}",
                                          "subscriptionType": s.subscription_type} for s in subs]}}


# ------------------------------------------------------------------------------------ ops
_HOST_WIRE = {"availability_zone": "availabilityZone", "served_areas": "servedAreas", "latency_ms": "latencyMs"}


def mec_host(host, base: str) -> dict[str, Any]:
    """MecHost of openapi/ops.yaml."""
    body: dict[str, Any] = {"id": host.id}
    for attr in ("name", "cloud", "region", "availability_zone", "queue", "location", "served_areas",
                 "latency_ms", "services", "features", "networks"):
        value = getattr(host, attr)
        if value is not None:
            body[_HOST_WIRE.get(attr, attr)] = value
    body["_links"] = {"self": {"href": f"{base.rstrip('/')}/ops/v1/mec_hosts/{host.id}"}}
    return body


def mec_host_doc(body: dict[str, Any]) -> dict[str, Any]:
    """The inventory document (Python names) of a MecHost request body."""
    wire_to_py = {v: k for k, v in _HOST_WIRE.items()}
    return {wire_to_py.get(k, k): v for k, v in body.items() if k != "_links"}


# ------------------------------------------------------------------------- ops: queues, workers, jobs
def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; meao stores UTC
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def job(j) -> dict[str, Any]:
    """Job (openapi/ops.yaml)."""
    return _compact({
        "jobId": j.task_id, "task": j.task, "args": j.args, "state": j.state, "queue": j.queue, "pops": j.pops,
        "enqueuedAt": _iso(j.enqueued_at), "worker": j.worker, "appLcmOpOccId": j.op_occ_id,
        "appInstanceId": j.app_instance_id, "lcmOperation": j.lcm_operation, "step": j.step,
        "since": _iso(j.since), "error": j.error,
    })


def queue_info(view, *, with_waiting: bool = False) -> dict[str, Any]:
    """QueueInfo (openapi/ops.yaml)."""
    r = view.reading
    body = _compact({
        "name": r.name, "pops": r.pops, "depth": r.depth,
        "oldestJobAgeSeconds": round(r.oldest_age_s, 3) if r.oldest_age_s is not None else None,
        "running": [job(j) for j in view.running],
        "recentFailures": [job(j) for j in view.recent_failures],
    })
    if with_waiting:
        body["waiting"] = [job(j) for j in view.waiting]
    return body


def worker_info(reading) -> dict[str, Any]:
    """WorkerInfo (openapi/ops.yaml)."""
    from meao.ops.jobs import _running

    return _compact({
        "name": reading.name, "status": reading.status, "queues": reading.queues, "pops": reading.pops,
        "heartbeatAgeSeconds": round(reading.heartbeat_age_s, 3) if reading.heartbeat_age_s is not None else None,
        "concurrency": reading.concurrency, "jobsDone": reading.jobs_done, "pid": reading.pid,
        "reserved": reading.reserved, "running": [job(_running(j, {})) for j in reading.running],
    })
