"""Prometheus metrics of meao processes (served at ``/ops/v1/metrics``; a worker's on ``--metrics-port``).

Counters and histograms are updated where the work happens (HTTP middleware, MEPM-V job steps,
notification delivery); gauges that describe shared state — op occurrences by state and queue depth per
PoP — are read from the database and Redis at scrape time by :class:`SystemCollector`, which only the API
registers, so a Prometheus summing over processes never counts them twice.

``meao serve --workers N`` answers ``/ops/v1/metrics`` for the whole server: its parent sets
``PROMETHEUS_MULTIPROC_DIR`` (:func:`meao.serving.shared_metrics_dir`) before anything imports ``prometheus_client``,
so each process keeps its counters and histograms in files there and the process answering a scrape
sums them all (prometheus_client's multiprocess mode). A restarted web process's counts stay counted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from meao.serving import MULTIPROC_ENV

log = logging.getLogger(__name__)
#: Prometheus reads plain ``text/plain`` as its classic text format 0.0.4; Connexion's response
#: validation needs the exact media type openapi/ops.yaml declares, without parameters
CONTENT_TYPE = "text/plain"

HTTP_REQUESTS = Counter("meao_http_requests_total", "HTTP requests answered, by API operation and status.",
                        ["operation", "method", "status"])
HTTP_LATENCY = Histogram("meao_http_request_duration_seconds", "Time to answer an HTTP request, by API operation.",
                         ["operation"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
JOB_STEP_SECONDS = Histogram("meao_job_step_duration_seconds",
                             "Duration of one step of a lifecycle job (MEPM-V), by operation and step.",
                             ["operation", "step"],
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
JOBS = Counter("meao_jobs_total", "Lifecycle job attempts run by this worker, by operation and outcome.",
               ["operation", "outcome"])
NOTIFY_FAILURES = Counter("meao_notification_delivery_failures_total",
                          "Failed notification delivery attempts, by reason (http_<status>, transport, gave_up).",
                          ["reason"])
NOTIFY_CIRCUIT_OPENED = Counter("meao_notification_circuit_opened_total",
                                "Times a subscription's delivery circuit opened (or opened again after a failed "
                                "probe): its notifications wait instead of holding POST threads.")


def operation_label(operation_id: str | None) -> str:
    """``meao.api.app_lcm.instantiate`` → ``app_lcm.instantiate`` (``unmatched`` outside the APIs)."""
    if not operation_id:
        return "unmatched"
    return ".".join(operation_id.rsplit(".", 2)[-2:])


class HttpMetricsMiddleware:
    """ASGI middleware outside Connexion's exception handling: it sees every final status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        # Connexion's routing records the operation in a shallow copy of the scope: a shared
        # "extensions" dict is how it reaches us (uvicorn, unlike test clients, sends none)
        extensions = scope.setdefault("extensions", {})

        async def send_and_record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            routing = extensions.get("connexion_routing", {})
            operation = operation_label(routing.get("operation_id"))
            HTTP_REQUESTS.labels(operation, scope.get("method", ""), str(status["code"])).inc()
            HTTP_LATENCY.labels(operation).observe(time.perf_counter() - started)


class SystemCollector(Collector):
    """Op occurrences by state and queue depth per queue, read when Prometheus scrapes."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from meao.db.models import AppLcmOpOcc, AppPackage
        from meao.db.session import session_scope

        ops = GaugeMetricFamily("meao_app_lcm_op_occs", "Application LCM operation occurrences by state.",
                                labels=["operation", "state"])
        pkgs = GaugeMetricFamily("meao_app_packages", "Application packages by onboarding state.",
                                 labels=["onboarding_state"])
        try:
            with session_scope() as session:
                for operation, state, n in session.execute(
                        select(AppLcmOpOcc.lcm_operation, AppLcmOpOcc.operation_state, func.count())
                        .group_by(AppLcmOpOcc.lcm_operation, AppLcmOpOcc.operation_state)):
                    ops.add_metric([operation, state], n)
                for state, n in session.execute(select(AppPackage.onboarding_state, func.count())
                                                .group_by(AppPackage.onboarding_state)):
                    pkgs.add_metric([state], n)
        except Exception:
            log.exception("metrics: reading the database failed")
        yield ops
        yield pkgs

        depth = GaugeMetricFamily("meao_queue_depth", "Jobs waiting in a queue (not yet taken by a worker).",
                                  labels=["queue", "pop"])
        age = GaugeMetricFamily("meao_queue_oldest_job_age_seconds", "Age of the oldest job waiting in a queue.",
                                labels=["queue", "pop"])
        try:
            from meao.ops.queues import queue_readings

            for reading in queue_readings():
                pop = ",".join(reading.pops)
                depth.add_metric([reading.name, pop], reading.depth)
                if reading.oldest_age_s is not None:
                    age.add_metric([reading.name, pop], reading.oldest_age_s)
        except Exception:
            log.exception("metrics: reading the queues failed")
        yield depth
        yield age


_scrape_registry: CollectorRegistry | None = None


def _registry() -> CollectorRegistry:
    """What a scrape reads: this process's registry, or (``--workers N``) every process's files."""
    global _scrape_registry
    if _scrape_registry is None:
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            _scrape_registry = registry
        else:
            _scrape_registry = REGISTRY
    return _scrape_registry


_system_registered = False


def register_system_collector() -> None:
    """Add :class:`SystemCollector` to the scraped registry once (API processes only)."""
    global _system_registered
    if not _system_registered:
        _registry().register(SystemCollector())
        _system_registered = True


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric (of the whole server under ``--workers N``) and its content type."""
    return generate_latest(_registry()), CONTENT_TYPE

