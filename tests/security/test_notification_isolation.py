"""One dead subscriber stalls nobody else's notifications (issue 16, item 2).

Real loopback HTTP subscribers and a real deliverer (its POST threads, its claim SQL) on SQLite and on
PostgreSQL. A blackholed callbackUri accepts connections and never answers; a failing one answers 503.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update

from meao.config import Settings, get_settings
from meao.db.models import NotifyCircuit, OutboxMessage, Subscription, utcnow
from meao.db.session import session_scope
from meao.notify import delivery
from meao.notify.delivery import Deliverer
from tests.conftest import wait_for


class Subscriber(ThreadingHTTPServer):
    """A subscriber on loopback: answers ``status`` (after ``gate`` opens and ``hold_s``), and counts how many
    requests it holds at once, per path."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, status: int = 204, hold_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.hold_s = hold_s
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every POST, answered or not
        self.received: list[tuple[float, dict[str, Any]]] = []  # (monotonic time, body) of the accepted ones
        self.current: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def close(self) -> None:
        self.gate.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Subscriber

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        srv = self.server
        with srv.lock:
            srv.requests.append(body)
            srv.current[self.path] += 1
            srv.most[self.path] = max(srv.most[self.path], srv.current[self.path])
        srv.gate.wait(30)
        time.sleep(srv.hold_s)
        with srv.lock:
            srv.current[self.path] -= 1  # before the answer: the next claim can only follow it
            status = srv.status
            if 200 <= status < 300:
                srv.received.append((time.monotonic(), body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


class Blackhole:
    """A callbackUri that accepts connections and never reads or answers them: every POST times out."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.sock.settimeout(0.1)
        self.held: list[socket.socket] = []
        self.accepted = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/dead"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.held.append(conn)
                self.accepted += 1

    def close(self) -> None:
        """Stop listening and drop the held connections (their POSTs fail at once)."""
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        with self.lock:
            for conn in self.held:
                conn.close()


def _settings(**changes: Any) -> Settings:
    return replace(get_settings(), **changes)


def _subscribe(url: str) -> str:
    with session_scope() as session:
        sub = Subscription(api="app_pkgm", subscription_type="AppPackageOnBoardingSubscription", callback_uri=url)
        session.add(sub)
        session.flush()
        return sub.id


def _queue(sub_id: str, url: str, keys: list[str]) -> None:
    """Commit one notification per key (the payload names its key)."""
    with session_scope() as session:
        session.add_all(OutboxMessage(subscription_id=sub_id, callback_uri=url, notification_id=key,
                                      notification_type="AppPackageOnBoardingNotification", payload={"key": key})
                        for key in keys)


def _messages(sub_id: str) -> list[OutboxMessage]:
    with session_scope() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.subscription_id == sub_id)
                                    .order_by(OutboxMessage.id)))


def _circuit(sub_id: str) -> NotifyCircuit | None:
    with session_scope() as session:
        return session.get(NotifyCircuit, sub_id)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


@pytest.fixture()
def deliverers() -> Iterator[list[Deliverer]]:
    """Deliverers a test makes; stopped afterwards, waiting for their POST threads (before the database goes)."""
    made: list[Deliverer] = []
    yield made
    for d in made:
        d.stop(wait=True)


class Clock:
    """The deliverer's clock (a collaborator): real time at first, moved forward by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _round(d: Deliverer) -> int:
    """One poll of ``d``; returns how many it claimed, once their POSTs are over."""
    claimed = d.run_once()
    wait_for(lambda: d.in_flight == 0, 30, 0.01, "the round's POSTs")
    return claimed


def test_healthy_subscribers_get_theirs_within_2s_p99_beside_a_blackholed_one(
        database: str, deliverers: list[Deliverer]) -> None:
    """500 notifications wait for a callbackUri that never answers; 10 other subscribers' arrive in 2 s (p99)."""
    settings = _settings(notify_timeout_s=3.0, notify_parallel=4, notify_per_subscription=2,
                         notify_circuit_failures=3, notify_backoff_base_s=1.0)
    dead = Blackhole()
    healthy = [Subscriber() for _ in range(10)]
    try:
        dead_id = _subscribe(dead.url)
        _queue(dead_id, dead.url, [f"dead-{n}" for n in range(500)])
        subs = [(_subscribe(srv.url("/ok")), srv) for srv in healthy]
        d = Deliverer(settings)
        deliverers.append(d)
        d.start()
        wait_for(lambda: dead.accepted >= 2, 30, 0.05, "the blackholed subscriber to hold its POST threads")

        committed: dict[str, float] = {}
        for wave in range(16):  # 8 s: the dead subscriber's circuit closed, open, half-open, open again
            for n, (sub_id, srv) in enumerate(subs):
                key = f"ok-{wave}-{n}"
                _queue(sub_id, srv.url("/ok"), [key])
                committed[key] = time.monotonic()  # after the commit: the deliverer may see it from now
            delivery.wake()
            time.sleep(0.5)

        def arrived() -> dict[str, float]:
            got = {body["key"]: at for srv in healthy for at, body in list(srv.received)}
            return got if len(got) == len(committed) else {}

        got = wait_for(arrived, 60, 0.1, "every healthy subscriber's notifications")
        latencies = sorted(got[key] - committed[key] for key in committed)
        p99 = latencies[math.ceil(0.99 * len(latencies)) - 1]
        assert p99 < 2.0, f"p99 {p99:.2f} s (median {latencies[len(latencies) // 2]:.2f} s) beside a dead subscriber"
        assert sum(len(srv.received) for srv in healthy) == len(committed), "each notification arrives once"
    finally:
        dead.close()  # its POSTs end now, so the deliverer stops at once
        for srv in healthy:
            srv.close()


def _open_the_circuit(d: Deliverer, sub_id: str, srv: Subscriber) -> NotifyCircuit:
    """Two rounds of two failing POSTs (per_subscription 2): the fourth failure opens the circuit."""
    assert _round(d) == 2
    assert _circuit(sub_id).failures == 2 and _circuit(sub_id).blocked_until is None
    assert _round(d) == 2
    circuit = _circuit(sub_id)
    assert circuit.failures == 4 and circuit.blocked_until is not None
    assert len(srv.requests) == 4
    return circuit


def test_circuit_opens_after_n_failures_and_its_messages_keep_their_attempts(
        database: str, deliverers: list[Deliverer], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(notify_parallel=4, notify_per_subscription=2, notify_circuit_failures=4,
                         notify_backoff_base_s=10.0, notify_max_attempts=3)
    srv = Subscriber(status=503)
    try:
        sub_id = _subscribe(srv.url("/flaky"))
        _queue(sub_id, srv.url("/flaky"), [f"m{n}" for n in range(10)])
        clock = Clock()  # from now on the deliverer's time is the test's
        monkeypatch.setattr(delivery, "utcnow", clock)
        d = Deliverer(settings)
        deliverers.append(d)
        circuit = _open_the_circuit(d, sub_id, srv)
        until = _aware(circuit.blocked_until)
        assert timedelta(seconds=8) <= until - clock.now <= timedelta(seconds=12), "base backoff, jittered ±20 %"

        for step in (0, 4, 4):  # all of it inside the open window: nothing is claimed, nothing is attempted
            clock.advance(step)
            assert _round(d) == 0
        assert len(srv.requests) == 4
        msgs = _messages(sub_id)
        assert [m.attempts for m in msgs] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
        assert {m.status for m in msgs} == {"PENDING"}, "a blocked subscription's messages are not given up on"
        assert all(m.claimed_until is None for m in msgs)
        assert all(_aware(m.next_attempt_at) >= until for m in msgs), "they wait for the circuit"
    finally:
        srv.close()


def test_half_open_probe_goes_alone_a_failed_one_reopens_longer_and_recovery_delivers_everything(
        database: str, deliverers: list[Deliverer], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(notify_parallel=4, notify_per_subscription=2, notify_circuit_failures=4,
                         notify_backoff_base_s=10.0, notify_max_attempts=8)
    srv = Subscriber(status=503)
    try:
        sub_id = _subscribe(srv.url("/flaky"))
        _queue(sub_id, srv.url("/flaky"), [f"m{n}" for n in range(10)])
        clock = Clock()
        monkeypatch.setattr(delivery, "utcnow", clock)
        d = Deliverer(settings)
        deliverers.append(d)
        _open_the_circuit(d, sub_id, srv)

        clock.advance(13)  # past the first window (at most 12 s): half-open
        assert _round(d) == 1, "half-open: one probe, though the subscription may hold 2 and 4 threads are free"
        assert len(srv.requests) == 5
        circuit = _circuit(sub_id)  # the probe failed: open again, for the next, longer backoff
        assert circuit.failures == 5
        assert _aware(circuit.blocked_until) - clock.now >= timedelta(seconds=16), "2 × base, jitter -20 %"
        clock.advance(13)
        assert _round(d) == 0, "still inside the second window"

        srv.status = 204  # the subscriber is back
        srv.gate.clear()  # hold the probe, to see that it goes alone
        clock.advance(12)  # past the second window (at most 24 s)
        assert d.run_once() == 1
        wait_for(lambda: srv.current["/flaky"] == 1, 10, 0.01, "the probe to reach the subscriber")
        assert d.run_once() == 0, "while the probe is out, nothing else of the subscription goes"
        srv.gate.set()
        wait_for(lambda: d.in_flight == 0, 10, 0.01, "the probe's answer")
        assert _circuit(sub_id) is None, "an answered probe closes the circuit"

        while _round(d):
            pass
        msgs = _messages(sub_id)
        assert {m.status for m in msgs} == {"DELIVERED"}
        assert sorted(body["key"] for _, body in srv.received) == sorted(f"m{n}" for n in range(10))
        # m0 was tried in the first round and was both probes; m1..m3 were tried once before; the rest only now
        assert [m.attempts for m in msgs] == [3, 2, 2, 2, 1, 1, 1, 1, 1, 1]
        assert sum(m.attempts for m in msgs) == len(srv.requests), "every counted attempt was a real POST"
        assert max(srv.most.values()) <= 2
    finally:
        srv.close()


def test_a_subscriber_that_answers_4xx_is_alive_and_its_circuit_stays_closed(
        database: str, deliverers: list[Deliverer]) -> None:
    """Refusals (a wrong credential, a gone endpoint) are the message's problem, not a dead subscriber's."""
    srv = Subscriber(status=404)
    try:
        sub_id = _subscribe(srv.url("/gone"))
        _queue(sub_id, srv.url("/gone"), ["g0", "g1", "g2", "g3"])
        d = Deliverer(_settings(notify_per_subscription=2, notify_circuit_failures=2))
        deliverers.append(d)
        assert _round(d) == 2 and _round(d) == 2
        assert len(srv.requests) == 4 and _circuit(sub_id) is None
    finally:
        srv.close()


def test_per_subscription_concurrency_never_exceeds_the_limit_across_two_deliverers(
        database: str, deliverers: list[Deliverer]) -> None:
    settings = _settings(notify_parallel=8, notify_per_subscription=2)
    srv = Subscriber(hold_s=0.3)
    try:
        for name in ("a", "b", "c"):
            path = f"/{name}"
            _queue(_subscribe(srv.url(path)), srv.url(path), [f"{name}{n}" for n in range(12)])
        for _ in range(2):  # two processes' deliverers, as far as the database can tell
            d = Deliverer(settings)
            deliverers.append(d)
            d.start()
        wait_for(lambda: len(srv.received) == 36, 60, 0.1, "all 36 notifications")
        assert dict(srv.most) == {"/a": 2, "/b": 2, "/c": 2}, "each subscription held 2 POSTs at most (and used both)"
    finally:
        srv.close()


def test_two_deliverers_side_by_side_deliver_each_message_once(
        database: str, deliverers: list[Deliverer]) -> None:
    settings = _settings(notify_parallel=4, notify_per_subscription=2)
    srv = Subscriber()
    try:
        subs = [_subscribe(srv.url(f"/s{n}")) for n in range(5)]
        for n, sub_id in enumerate(subs):
            _queue(sub_id, srv.url(f"/s{n}"), [f"s{n}-{k}" for k in range(40)])
        for _ in range(2):
            d = Deliverer(settings)
            deliverers.append(d)
            d.start()
        wait_for(lambda: len(srv.received) >= 200, 60, 0.1, "all 200 notifications")
        for d in deliverers:
            d.stop(wait=True)
        keys = Counter(body["key"] for body in srv.requests)
        assert len(keys) == 200 and set(keys.values()) == {1}, "each notification was POSTed exactly once"
        with session_scope() as session:
            rows = session.execute(select(OutboxMessage.status, OutboxMessage.attempts)).all()
        assert set(rows) == {("DELIVERED", 1)}
    finally:
        srv.close()


def test_a_lease_that_expired_frees_the_subscriptions_slot(database: str, deliverers: list[Deliverer],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliverer that died mid-POST holds its messages only until their lease ends."""
    srv = Subscriber()
    try:
        sub_id = _subscribe(srv.url("/x"))
        _queue(sub_id, srv.url("/x"), ["x0", "x1", "x2"])
        clock = Clock()
        monkeypatch.setattr(delivery, "utcnow", clock)
        lease = clock.now + timedelta(seconds=delivery.LEASE_S)
        with session_scope() as session:  # a dead process claimed two of them
            ids = session.scalars(select(OutboxMessage.id).where(OutboxMessage.subscription_id == sub_id)
                                  .order_by(OutboxMessage.id).limit(2)).all()
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                            .values(attempts=1, claimed_until=lease, next_attempt_at=lease))
        d = Deliverer(_settings(notify_per_subscription=2))
        deliverers.append(d)
        assert _round(d) == 0, "the subscription's 2 slots are held"
        clock.advance(delivery.LEASE_S + 1)
        assert _round(d) == 2 and _round(d) == 1
        assert sorted(body["key"] for _, body in srv.received) == ["x0", "x1", "x2"]
    finally:
        srv.close()


def test_a_post_that_outlives_its_lease_keeps_it_while_its_deliverer_lives(
        database: str, deliverers: list[Deliverer], monkeypatch: pytest.MonkeyPatch) -> None:
    """A subscriber that answers slowly is not POSTed the same message twice, nor given a slot more."""
    srv = Subscriber()
    srv.gate.clear()  # it answers only when the test says
    try:
        sub_id = _subscribe(srv.url("/slow"))
        _queue(sub_id, srv.url("/slow"), ["s0", "s1", "s2"])
        clock = Clock()
        monkeypatch.setattr(delivery, "utcnow", clock)
        first, second = Deliverer(_settings(notify_per_subscription=2)), Deliverer(_settings())
        deliverers.extend([first, second])
        assert first.run_once() == 2
        wait_for(lambda: srv.current["/slow"] == 2, 10, 0.01, "both POSTs to reach the subscriber")
        for _ in range(6):  # 6 × 30 s: one and a half leases
            clock.advance(delivery.RENEW_S)
            first.run_once()  # a poll of a live deliverer renews its leases
            assert second.run_once() == 0, "the other deliverer takes neither the held messages nor a third"
        srv.gate.set()
        wait_for(lambda: first.in_flight == 0, 10, 0.01, "the slow answers")
        assert _round(second) == 1
        assert Counter(body["key"] for body in srv.requests) == {"s0": 1, "s1": 1, "s2": 1}, "each POSTed once"
    finally:
        srv.close()


def test_migration_0013_goes_down_and_up(database: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from meao.db.migrate import MIGRATIONS
    from meao.db.session import get_engine

    get_engine(database).dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database.replace("%", "%%"))
    command.downgrade(cfg, "0012")
    engine = create_engine(database)
    try:
        assert "claimed_until" not in {c["name"] for c in inspect(engine).get_columns("outbox")}
        assert "notify_circuit" not in inspect(engine).get_table_names()
        command.upgrade(cfg, "head")
        assert "claimed_until" in {c["name"] for c in inspect(engine).get_columns("outbox")}
        assert {"ix_outbox_due", "ix_outbox_claimed_until"} <= {i["name"] for i in inspect(engine).get_indexes("outbox")}
        assert "notify_circuit" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
