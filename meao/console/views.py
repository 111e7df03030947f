"""The console's snapshot (``GET /ops/v1/console``): the whole of meao on one page, computed once for everyone.

A browser console polls every couple of seconds, and so do all of an operator team's browsers; the
snapshot reads the broker, asks every worker for a report, reads the clouds' capacity and probes the
MEPs, so it is computed at most once per ``MEAO_CONSOLE_REFRESH_S`` per process and tenant view. A lock
per view makes concurrent callers wait for the one computation under way instead of starting their own.

What it reuses: the MEC host inventory (``meao.lcm.hosts``), each host's free capacity
(``meao.lcm.free_capacity``, itself cached: a slow cloud is read in the background and answered from the
cache, and a snapshot waits for it at most ``CAPACITY_WAIT_S``), the queue and worker readings of
``meao.ops`` (one broadcast to the workers per snapshot), and lean read-only queries for the tables.
With tenant isolation on, packages, instances and operations are the caller's tenant's; the PoPs,
queues and workers are the installation's, as in the rest of the ops API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter
from sqlalchemy import func, select

from meao.auth.tenancy import visible
from meao.config import get_settings
from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage, Job, MecHost
from meao.db.session import read_scope
from meao.lcm import hosts as host_inventory
from meao.lcm.free_capacity import FreeCapacity, free_capacity
from meao.lcm.instances import ops_of_tenant
from meao.lcm.op_occ import COMPLETED, FAILED_TEMP, PROCESSING, STARTING
from meao.ops import queues as q
from meao.ops import workers as w
from meao.problems import ProblemError
from meao.wire.times import utc

ACTIVE_STATES = (PROCESSING, STARTING, FAILED_TEMP)
# what the snapshot reads of each table (meao.wire.ops.console_*): no ORM objects, no unused JSON columns
_op, _pkg, _inst = AppLcmOpOcc.__table__.c, AppPackage.__table__.c, AppInstance.__table__.c
OP_COLUMNS = (_op.id, _op.app_instance_id, _op.lcm_operation, _op.operation_state, _op.start_time,
              _op.state_entered_time, _op.mec_host_id, _op.queue, _op.worker, _op.attempt, _op.current_step,
              _op.step_log, _op.error)
PACKAGE_COLUMNS = (_pkg.id, _pkg.appd_id, _pkg.app_name, _pkg.app_provider, _pkg.app_software_version,
                   _pkg.appd_version, _pkg.onboarding_state, _pkg.operational_state, _pkg.usage_state,
                   _pkg.onboarding_failure)
INSTANCE_COLUMNS = (_inst.id, _inst.name, _inst.app_name, _inst.instantiation_state, _inst.operational_state,
                    _inst.mec_host_id, _inst.resources)
MAX_OPERATIONS = 50
MAX_ROWS = 100  # packages and instances listed
TREND_WINDOW_S = 3600
TREND_BUCKET_S = 300
CAPACITY_WAIT_S = 1.0  # the longest a snapshot waits for the clouds' capacity (and the MEPs' probes)
MEP_PROBE_TIMEOUT_S = 1.0
MEP_PROBE_CACHE_S = 10.0

SNAPSHOTS = Counter("meao_console_snapshots_total",
                    "Console snapshots this process computed (at most one per MEAO_CONSOLE_REFRESH_S per tenant "
                    "view, however many browsers poll).")

# capacity reads and MEP probes: a slow cloud keeps one of these busy, never the snapshot
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console")
_inflight: dict[tuple[str, str], Future] = {}
_inflight_lock = threading.Lock()


def _once(kind: str, key: str, fn: Callable[..., Any], *args: Any) -> Future:
    """``fn(*args)`` in the pool, unless the same ``kind`` of read of ``key`` is still under way: a cloud
    that hangs holds one thread however many snapshots ask meanwhile."""
    with _inflight_lock:
        running = _inflight.get((kind, key))
        if running is not None and not running.done():
            return running
        future = _inflight[(kind, key)] = _pool.submit(fn, *args)
        return future


# ------------------------------------------------------------------------------------- what it holds
@dataclass(frozen=True)
class CapacityUse:
    """A host's capacity for the console: ``used`` is what meao's instances on it take (their flavors),
    ``total`` that plus what the cloud reports free in the host's zone (None: unlimited quota)."""

    vcpus: tuple[int, int]
    ram_mb: tuple[int, int]
    instances: tuple[int, int | None]


@dataclass(frozen=True)
class MepState:
    """The MEP of a host: EMBEDDED (the one inside ``meao serve``), UP or DOWN (its own ``mep_url``)."""

    state: str
    url: str | None = None
    detail: str | None = None


@dataclass
class PopView:
    """One MEC host with what runs for it."""

    host: MecHost
    capacity: CapacityUse | None
    capacity_error: str | None
    queue: q.QueueReading | None
    workers: list[w.WorkerReading]
    mep: MepState


@dataclass
class QueueRow:
    """One queue: waiting (broker), running (workers' reports), failed (FAILED_TEMP occurrences)."""

    reading: q.QueueReading
    running: int
    failed: int


@dataclass
class OpRow:
    """An operation occurrence (a row of ``OP_COLUMNS``) and the name of its application."""

    op: Any
    app_name: str | None


@dataclass
class Trends:
    """The last hour: instantiate durations and queue depths, per bucket."""

    window_s: int
    bucket_s: int
    starts: list[datetime]
    durations: list[list[float]]  # per bucket: the durations (s) of the instantiates that completed in it
    queue_depth: dict[str, list[int]]  # per queue: the highest depth within each bucket


@dataclass
class Snapshot:
    """Everything the console shows."""

    generated_at: datetime
    pops: list[PopView]
    queues: list[QueueRow]
    operations: list[OpRow]
    packages: list[Any]
    instances: list[Any]
    counts: dict[str, Any]
    trends: Trends


# ------------------------------------------------------------------------------------- the cache
@dataclass(frozen=True)
class _Entry:
    body: dict[str, Any]
    at: float  # time.monotonic() when computed


_cache: dict[str | None, _Entry] = {}
_locks: dict[str | None, threading.Lock] = {}
_guard = threading.Lock()


def cached_snapshot(tenant: str | None, render: Callable[[Snapshot], dict[str, Any]]) -> dict[str, Any]:
    """The rendered snapshot of ``tenant``'s view (None: every tenant's), computed at most once per
    MEAO_CONSOLE_REFRESH_S in this process; callers arriving meanwhile wait for it and share it."""
    refresh = get_settings().console.refresh_s
    with _guard:
        lock = _locks.setdefault(tenant, threading.Lock())
    with lock:
        hit = _cache.get(tenant)
        if hit is not None and time.monotonic() - hit.at < refresh:
            return hit.body
        body = render(compute(tenant))
        _cache[tenant] = _Entry(body, time.monotonic())
        SNAPSHOTS.inc()
        return body


def forget() -> None:
    """Drop every cached snapshot (tests; a configuration change)."""
    with _guard:
        _cache.clear()


# ------------------------------------------------------------------------------------- computing it
def compute(tenant: str | None) -> Snapshot:
    """Read everything now (no cache of this module's own; capacity and MEP probes are cached)."""
    now = datetime.now(UTC)
    hosts = host_inventory.all_hosts()
    capacity_reads = {h.id: _once("capacity", h.id, free_capacity, h.id) for h in hosts}
    probes = {h.id: _once("mep", h.id, mep_state, h) for h in hosts}
    pops_of = q.queue_pops(hosts)  # the inventory is read once per snapshot
    readings = {r.name: r for r in q.queue_readings(pops=pops_of)}
    # one broadcast: the queues' running jobs come from it too
    workers = _with_known_pops(w.worker_readings(pops_of))
    with read_scope() as session:
        failed = dict(session.execute(select(AppLcmOpOcc.queue, func.count()).where(
            AppLcmOpOcc.operation_state == FAILED_TEMP).group_by(AppLcmOpOcc.queue)).all())
        used = _meao_usage(session)
        operations = _operations(session, tenant)
        packages = list(session.execute(select(*PACKAGE_COLUMNS).where(
            visible(AppPackage.tenant, tenant)).order_by(AppPackage.created_at.desc(), AppPackage.id.desc())
            .limit(MAX_ROWS)))
        instances = list(session.execute(select(*INSTANCE_COLUMNS).where(
            visible(AppInstance.tenant, tenant)).order_by(AppInstance.created_at.desc(), AppInstance.id.desc())
            .limit(MAX_ROWS)))
        counts = _counts(session, tenant)
        trends = _trends(session, tenant, now, list(pops_of))
    running: dict[str, int] = {}
    for reading in workers:
        for job in reading.running:
            if job.queue:
                running[job.queue] = running.get(job.queue, 0) + 1
    deadline = time.monotonic() + CAPACITY_WAIT_S
    pops = []
    for host in hosts:
        capacity, error = _capacity(capacity_reads[host.id], deadline, host, used.get(host.id, (0, 0, 0)))
        pops.append(PopView(host=host, capacity=capacity, capacity_error=error, queue=readings.get(host.queue),
                            workers=[r for r in workers if host.id in r.pops],
                            mep=_wait(probes[host.id], deadline, MepState("DOWN", host.mep_url,
                                                                          "the MEP's probe did not finish"))))
    queues = [QueueRow(reading=r, running=running.get(name, 0), failed=int(failed.get(name) or 0))
              for name, r in readings.items()]
    return Snapshot(generated_at=now, pops=pops, queues=queues, operations=operations, packages=packages,
                    instances=instances, counts=counts, trends=trends)


_known_pops: dict[str, list[str]] = {}  # worker → the PoPs it served when it last answered (this process)


def _with_known_pops(readings: list[w.WorkerReading]) -> list[w.WorkerReading]:
    """A worker that stopped answering reports no queues: it stays listed under the PoPs it served when it
    last answered a snapshot of this process, where the operator looks for it."""
    for reading in readings:
        if reading.pops:
            _known_pops[reading.name] = list(reading.pops)
        elif reading.status not in ("online", "draining"):
            reading.pops = list(_known_pops.get(reading.name, []))
    return readings


def _wait(future: Future, deadline: float, default: Any) -> Any:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return default


def _capacity(read: Future, deadline: float, host: MecHost,
              used: tuple[int, int, int]) -> tuple[CapacityUse | None, str | None]:
    try:
        free: FreeCapacity = read.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return None, (f"the cloud {host.cloud} has not answered yet; its capacity is being read in the background "
                      "and shows on a later refresh")
    except ProblemError as exc:
        return None, exc.detail
    except Exception as exc:  # noqa: BLE001 — one cloud's failure must not hide the others
        return None, f"the capacity of the cloud {host.cloud} could not be read ({type(exc).__name__}: {exc})"
    vcpus, ram_mb, count = used
    free_vcpus = sum(h.vcpu for h in free.compute_hosts)
    free_ram = sum(h.ram_mb for h in free.compute_hosts)
    left = free.capacity.quota.instances
    return CapacityUse(vcpus=(vcpus, vcpus + free_vcpus), ram_mb=(ram_mb, ram_mb + free_ram),
                       instances=(count, None if left is None else count + left)), None


def _meao_usage(session: Any) -> dict[str, tuple[int, int, int]]:
    """Per MEC host: (vCPUs, RAM MB, instances) that meao's INSTANTIATED instances take, by their packages'
    flavors (an instantiate request's own virtualComputeDescriptor override is not counted)."""
    from meao.catalogue.appd import AppD
    from meao.lcm.requirements import flavor_size

    rows = session.execute(select(AppInstance.mec_host_id, AppInstance.app_pkg_id, func.count()).where(
        AppInstance.instantiation_state == "INSTANTIATED", AppInstance.mec_host_id.is_not(None))
        .group_by(AppInstance.mec_host_id, AppInstance.app_pkg_id)).all()
    sizes: dict[str, tuple[int, int, int]] = {}
    for pkg_id, model in session.execute(select(AppPackage.id, AppPackage.appd_model).where(
            AppPackage.id.in_({r[1] for r in rows}))):
        try:
            sizes[pkg_id] = flavor_size(AppD.from_stored(model), {}) if model else (1, 0, 0)
        except Exception:  # noqa: BLE001 — an AppD stored by an older meao: count the instance only
            sizes[pkg_id] = (0, 0, 0)
    used: dict[str, tuple[int, int, int]] = {}
    for host_id, pkg_id, n in rows:
        vcpu, ram, _ = sizes.get(pkg_id, (0, 0, 0))
        before = used.get(host_id, (0, 0, 0))
        used[host_id] = (before[0] + vcpu * n, before[1] + ram * n, before[2] + n)
    return used


def _operations(session: Any, tenant: str | None) -> list[OpRow]:
    """Every active one (PROCESSING, STARTING, FAILED_TEMP; newest first), then the latest others, ≤ 50
    (table rows of the columns the console shows, not ORM objects)."""
    base = select(*OP_COLUMNS, AppInstance.app_name.label("app_name_")).outerjoin(
        AppInstance, AppInstance.id == AppLcmOpOcc.app_instance_id)
    base = base.where(visible(AppInstance.tenant, tenant))  # joined above for the app's name
    active = session.execute(base.where(AppLcmOpOcc.operation_state.in_(ACTIVE_STATES)).order_by(
        AppLcmOpOcc.start_time.desc(), AppLcmOpOcc.id).limit(MAX_OPERATIONS)).all()
    others = session.execute(base.where(AppLcmOpOcc.operation_state.not_in(ACTIVE_STATES)).order_by(
        AppLcmOpOcc.state_entered_time.desc(), AppLcmOpOcc.id).limit(MAX_OPERATIONS - len(active))).all() \
        if len(active) < MAX_OPERATIONS else []
    return [OpRow(row, row.app_name_) for row in [*active, *others]]


def _counts(session: Any, tenant: str | None) -> dict[str, Any]:
    packages = session.scalar(select(func.count()).select_from(AppPackage).where(visible(AppPackage.tenant, tenant)))
    instances = session.scalar(select(func.count()).select_from(AppInstance).where(
        visible(AppInstance.tenant, tenant)))
    by_state = ops_of_tenant(select(AppLcmOpOcc.operation_state, func.count()).select_from(AppLcmOpOcc), tenant)
    states = dict(session.execute(by_state.group_by(AppLcmOpOcc.operation_state)).all())
    return {"packages": int(packages or 0), "instances": int(instances or 0),
            "operations_by_state": {k: int(v) for k, v in sorted(states.items())}}


def _trends(session: Any, tenant: str | None, now: datetime, queues: list[str]) -> Trends:
    """The last hour in ``TREND_BUCKET_S`` buckets (aligned on multiples of it; the last one is under way).

    Instantiate durations: the COMPLETED INSTANTIATE occurrences whose ``stateEnteredTime`` falls in a
    bucket, each ``stateEnteredTime − startTime`` (queue wait included, as the OSS sees it).

    Queue depth is reconstructed from the ``job`` table (meao's outbox of jobs, rows kept for a day), not
    read from the broker's past, which nothing records: a job counts as waiting from its row's
    ``created_at`` (written in the request's transaction; the dispatcher sends it within about
    MEAO_JOB_DISPATCH_INTERVAL_S) until its ``claimed_at`` (a worker claimed it, or it was settled
    without running: cancelled, purged, superseded), or until now while it has neither. Messages that
    reached the broker without a row (sent by an older meao, or by hand) are not counted, and a job that
    was re-sent counts once. Each bucket gives the highest depth within it.
    """
    end = datetime.fromtimestamp((int(now.timestamp()) // TREND_BUCKET_S + 1) * TREND_BUCKET_S, UTC)
    n = TREND_WINDOW_S // TREND_BUCKET_S
    starts = [end - timedelta(seconds=TREND_BUCKET_S * (n - i)) for i in range(n)]
    since = starts[0]

    stmt = ops_of_tenant(select(AppLcmOpOcc.start_time, AppLcmOpOcc.state_entered_time).where(
        AppLcmOpOcc.lcm_operation == "INSTANTIATE", AppLcmOpOcc.operation_state == COMPLETED,
        AppLcmOpOcc.state_entered_time >= since), tenant)
    durations: list[list[float]] = [[] for _ in starts]
    for started, entered in session.execute(stmt):
        entered, started = utc(entered), utc(started)
        i = int((entered - since).total_seconds() // TREND_BUCKET_S)
        if 0 <= i < n:
            durations[i].append(max(0.0, (entered - started).total_seconds()))

    jobs = session.execute(select(Job.queue, Job.created_at, Job.claimed_at).where(
        Job.created_at < end, (Job.claimed_at.is_(None)) | (Job.claimed_at >= since))).all()
    spans: dict[str, list[tuple[datetime, datetime]]] = {name: [] for name in queues}
    for queue, created, claimed in jobs:
        spans.setdefault(queue, []).append((utc(created), utc(claimed) if claimed else now))
    depth = {name: _highest_depths(found, starts, TREND_BUCKET_S) for name, found in spans.items()}
    return Trends(window_s=TREND_WINDOW_S, bucket_s=TREND_BUCKET_S, starts=starts, durations=durations,
                  queue_depth=depth)


def _highest_depths(spans: Iterable[tuple[datetime, datetime]], starts: list[datetime], bucket_s: int) -> list[int]:
    """The highest number of overlapping [begin, end) spans within each bucket."""
    events = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1]))
    out, depth, i = [], 0, 0
    for start in starts:
        stop = start + timedelta(seconds=bucket_s)
        while i < len(events) and events[i][0] <= start:  # the depth as the bucket opens
            depth += events[i][1]
            i += 1
        highest = depth
        while i < len(events) and events[i][0] < stop:
            depth += events[i][1]
            highest = max(highest, depth)
            i += 1
        out.append(max(0, highest))
    return out


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) of ``values`` by linear interpolation between ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ------------------------------------------------------------------------------------- MEP probes
_probes: dict[str, tuple[float, MepState]] = {}
_probe_lock = threading.Lock()


def mep_state(host: MecHost) -> MepState:
    """EMBEDDED for a host without a ``mep_url`` (``meao serve`` runs its MEP); else UP when the MEP at
    ``mep_url`` serves its Mm5 description within ``MEP_PROBE_TIMEOUT_S``, DOWN otherwise (cached
    ``MEP_PROBE_CACHE_S`` per URL)."""
    if not host.mep_url:
        return MepState("EMBEDDED")
    url = host.mep_url.rstrip("/")
    with _probe_lock:
        hit = _probes.get(url)
    if hit is not None and time.monotonic() - hit[0] < MEP_PROBE_CACHE_S:
        return hit[1]
    try:
        resp = httpx.get(f"{url}/mm5/v1/openapi.json", timeout=MEP_PROBE_TIMEOUT_S)
        state = (MepState("UP", url) if resp.status_code == 200 else
                 MepState("DOWN", url, f"the MEP answered {resp.status_code} to GET /mm5/v1/openapi.json"))
    except httpx.HTTPError as exc:
        state = MepState("DOWN", url, f"the MEP did not answer ({type(exc).__name__}: {exc}); check that `meao mep "
                         f"serve --host-id {host.id}` runs there, or the host's mepUrl")
    with _probe_lock:
        _probes[url] = (time.monotonic(), state)
    return state
