"""At-least-once delivery of outbox notifications to subscribers' callbackUri, one subscriber isolated from another.

A background thread in every worker process claims due messages (compare-and-swap on ``attempts``,
so several processes can deliver side by side), POSTs them in parallel with a short timeout, and
reschedules failures with exponential backoff. A dead subscriber costs a timeout on one delivery
thread, never a lifecycle or onboarding job, and never another subscriber's notifications:

- a process claims only as many messages as it has free POST threads (``notify_parallel``), so a claimed
  message starts at once and its lease covers only its POST;
- one subscription holds at most ``notify_per_subscription`` messages in flight across every process
  (``outbox.claimed_until`` marks them; the claim counts them in SQL, under a per-subscription lock);
- ``notify_circuit_failures`` consecutive failures (timeouts, refused connections, HTTP 5xx or 429) open
  the subscription's circuit (``notify_circuit``) for a backoff that grows, capped and jittered: its
  messages wait without losing attempts, then one probe goes; its answer closes the circuit, its
  failure opens it again for longer.

The claim query ranks due messages per subscription and keeps, per subscription, only as many as it has
room for, so 500 due messages of one blocked subscriber never fill the query's LIMIT.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Select, case, delete, func, literal, or_, select, text, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from meao.config import Settings
from meao.db.models import NotifyCircuit, OutboxMessage, Subscription, utcnow
from meao.db.session import read_scope, session_scope
from meao.metrics import NOTIFY_CIRCUIT_OPENED, NOTIFY_FAILURES
from meao.notify.callback_auth import CallbackAuthenticator
from meao.outbound import OutboundGate, OutboundPolicy, Resolver
from meao.redaction import redact

log = logging.getLogger(__name__)
LEASE_S = 120  # a claimed message is retried after this if its deliverer died mid-POST
RENEW_S = LEASE_S / 4  # a live deliverer renews the leases of its POSTs this often: a slow POST keeps its claim
PENDING = "PENDING"
CLAIM_LOCK = 7401933  # pg_advisory_xact_lock(CLAIM_LOCK, hashtext(subscription id)): claims of one subscription take turns
_due = threading.Event()  # set by wake(): this process committed a notification; look now, not at the next poll


def wake() -> None:
    """Tell this process's deliverer that a notification was just committed (it looks at once)."""
    _due.set()


def backoff_s(attempts: int, settings: Settings) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: exponential, capped, jittered."""
    base = min(settings.notify_backoff_base_s * 2 ** max(attempts - 1, 0), settings.notify_backoff_max_s)
    return base * random.uniform(0.8, 1.2)


def claimable(now: datetime, limit: int, settings: Settings) -> Select:
    """Due messages this process may claim now: (id, attempts, subscription id), oldest first, at most ``limit``.

    Leaves out messages in flight (lease not expired) and subscriptions whose circuit is open, and keeps per
    subscription only its room: ``notify_per_subscription`` (one probe when its circuit is half-open) less
    what it has in flight. One window over the due and the in-flight messages does it, the in-flight first in
    each subscription, so a due message's rank is its subscription's share it would take.
    """
    leased = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now)
    due = (select(OutboxMessage.id, OutboxMessage.attempts, OutboxMessage.subscription_id, literal(0).label("busy"))
           .where(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now, leased))  # ix_outbox_due
    busy = (select(OutboxMessage.id, OutboxMessage.attempts, OutboxMessage.subscription_id, literal(1).label("busy"))
            .where(OutboxMessage.claimed_until > now))  # a finished POST clears claimed_until; few rows
    both = union_all(due, busy).subquery("both")
    # partitioned by an expression, not the column: SQLite would otherwise read the in-flight rows through
    # ix_outbox_subscription_id, in order, which is the whole table, instead of through ix_outbox_claimed_until
    ranked = select(both, func.row_number().over(partition_by=both.c.subscription_id + "",
                                                 order_by=(both.c.busy.desc(), both.c.id)).label("rank")
                    ).subquery("ranked")
    share = case((NotifyCircuit.failures >= settings.notify_circuit_failures, 1),
                 else_=settings.notify_per_subscription)
    return (select(ranked.c.id, ranked.c.attempts, ranked.c.subscription_id)
            .outerjoin(NotifyCircuit, NotifyCircuit.subscription_id == ranked.c.subscription_id)
            .where(ranked.c.busy == 0, ranked.c.rank <= share,
                   or_(NotifyCircuit.blocked_until.is_(None), NotifyCircuit.blocked_until <= now))
            .order_by(ranked.c.id).limit(limit))


def _claim(session: Session, msg_id: int, attempts: int, subscription_id: str, now: datetime,
           settings: Settings) -> bool:
    """Take one message if nobody did since it was read and its subscription still has room (CAS)."""
    if session.get_bind().dialect.name == "postgresql":
        # READ COMMITTED: after this lock the UPDATE below sees the other claims of this subscription committed
        session.execute(text(f"SELECT pg_advisory_xact_lock({CLAIM_LOCK}, hashtext(:sub))"), {"sub": subscription_id})
    other = aliased(OutboxMessage)
    held = (select(func.count()).select_from(other)
            # an expression, not the column: through ix_outbox_claimed_until (the few held), never the
            # subscription's whole history through ix_outbox_subscription_id
            .where(other.subscription_id + "" == subscription_id, other.claimed_until > now)
            .scalar_subquery())
    circuit = select(NotifyCircuit.failures, NotifyCircuit.blocked_until).where(
        NotifyCircuit.subscription_id == subscription_id)
    state = session.execute(circuit).first()
    if state is not None and state.blocked_until is not None and _aware(state.blocked_until) > now:
        return False
    room = 1 if state is not None and state.failures >= settings.notify_circuit_failures \
        else settings.notify_per_subscription
    lease = now + timedelta(seconds=LEASE_S)
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == msg_id, OutboxMessage.attempts == attempts, OutboxMessage.status == PENDING,
               or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now), held < room)
        .values(attempts=attempts + 1, claimed_until=lease, next_attempt_at=lease)).rowcount == 1


def _aware(moment: datetime) -> datetime:
    """SQLite hands DateTime(timezone=True) back naive; it was stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _circuit_failure(session: Session, subscription_id: str, url: str, now: datetime, settings: Settings) -> None:
    """Count one more consecutive failure; from the threshold on, block the subscription (longer each time)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    failures, blocked_until = session.execute(
        insert(NotifyCircuit).values(subscription_id=subscription_id, failures=1)
        .on_conflict_do_update(index_elements=[NotifyCircuit.subscription_id],
                               set_={"failures": NotifyCircuit.failures + 1})
        .returning(NotifyCircuit.failures, NotifyCircuit.blocked_until)).one()
    over = failures - settings.notify_circuit_failures
    if over < 0 or (blocked_until is not None and _aware(blocked_until) > now):
        return  # below the threshold, or a POST of before the circuit opened: it stays open as it is
    until = now + timedelta(seconds=backoff_s(over + 1, settings))
    session.execute(update(NotifyCircuit).where(NotifyCircuit.subscription_id == subscription_id)
                    .values(blocked_until=until))
    # its due messages wait for the circuit, not in the claim query's scan; their attempts stay as they are
    waiting = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subscription_id == subscription_id, OutboxMessage.status == PENDING,
               OutboxMessage.next_attempt_at < until,
               or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now))
        .values(next_attempt_at=until)).rowcount
    NOTIFY_CIRCUIT_OPENED.inc()
    if over == 0:
        log.warning("notifications to subscription %s (%s) failed %d times in a row: its circuit is open, its "
                    "%d waiting notifications keep their attempts and are retried from %s, one probe at a "
                    "time; check that the callbackUri answers, or delete the subscription",
                    subscription_id, url, failures, waiting, until.isoformat(timespec="seconds"))


class Deliverer:
    """Polls the outbox and delivers due notifications, at most ``parallel`` at a time."""

    def __init__(self, settings: Settings, poll_s: float = 0.2, parallel: int | None = None,
                 resolver: Resolver | None = None) -> None:
        self.settings = settings
        self.poll_s = poll_s
        self.parallel = parallel or settings.notify_parallel
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="meao-notify")
        # callbackUri and tokenEndpoint connections only where the outbound policy allows (resolver: tests)
        self._client = OutboundGate(OutboundPolicy.for_notifications(settings), resolver).client(
            timeout=settings.notify_timeout_s, follow_redirects=False)
        self._callback_auth = CallbackAuthenticator()  # the subscriptions' credentials; tokens cached
        self._thread = threading.Thread(target=self._loop, name="meao-deliverer", daemon=True)
        self._inflight: dict[int, int] = {}  # message id → its attempts as claimed (the CAS of a renewal)
        self._renew_at: datetime | None = None
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """How many of this process's POST threads are busy."""
        with self._lock:
            return len(self._inflight)

    def start(self) -> None:
        """Start the polling thread."""
        self._thread.start()

    def stop(self, wait: bool = False) -> None:
        """Stop polling; in-flight POSTs finish or time out (``wait``: before this returns)."""
        self._stop.set()
        _due.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            _due.clear()  # before the poll: a wake-up during it is not lost
            try:
                self.run_once()
            except Exception:  # the database may be briefly unavailable; keep going
                log.exception("outbox poll failed")
            _due.wait(self.poll_s)

    def run_once(self) -> int:
        """Claim as many due messages as there are free POST threads and start them; returns how many."""
        now = utcnow()
        self._renew_leases(now)
        free = self.parallel - self.in_flight
        if free <= 0:
            return 0
        with read_scope() as session:  # one SELECT, no transaction: a PoP worker polls over the WAN
            due = session.execute(claimable(now, free, self.settings)).all()
        claimed = 0
        for msg_id, attempts, subscription_id in due:
            with self._lock:
                if msg_id in self._inflight:  # its lease ran out under our own slow POST: never POST it twice
                    continue
            with session_scope() as session:
                if not _claim(session, msg_id, attempts, subscription_id, now, self.settings):
                    continue  # another deliverer took it, or took the subscription's last slot
                msg = session.get(OutboxMessage, msg_id)
                sub = session.get(Subscription, msg.subscription_id)
                job = (msg.id, msg.callback_uri, msg.payload, attempts + 1, sub.authentication if sub else None,
                       msg.subscription_id)
            with self._lock:
                self._inflight[msg_id] = attempts + 1
            self._pool.submit(self._deliver, *job)
            claimed += 1
        return claimed

    def _renew_leases(self, now: datetime) -> None:
        """Extend the leases of this process's POSTs, so a subscriber that answers slowly (or trickles its
        answer past the lease) is neither POSTed twice nor given a slot more than its share."""
        if self._renew_at is not None and now < self._renew_at:
            return
        self._renew_at = now + timedelta(seconds=RENEW_S)
        with self._lock:
            held = dict(self._inflight)
        if not held:
            return
        lease = now + timedelta(seconds=LEASE_S)
        with session_scope() as session:
            for msg_id, attempts in held.items():
                session.execute(update(OutboxMessage)
                                .where(OutboxMessage.id == msg_id, OutboxMessage.attempts == attempts,
                                       OutboxMessage.status == PENDING, OutboxMessage.claimed_until.is_not(None))
                                .values(claimed_until=lease, next_attempt_at=lease))

    def _deliver(self, msg_id: int, url: str, payload: dict, attempts: int, authentication: dict | None,
                 subscription_id: str) -> None:
        error = None  # never holds a credential: httpx and CredentialsError messages name only URLs and ids
        unreachable = False  # the subscriber did not answer, or answered it cannot take it now: its circuit counts
        answered = False  # it answered something else: its circuit closes
        try:
            resp = self._client.post(url, json=payload, auth=self._callback_auth.auth_for(authentication))
            unreachable = resp.status_code >= 500 or resp.status_code == 429
            answered = not unreachable
            if not 200 <= resp.status_code < 300:
                error = f"subscriber answered HTTP {resp.status_code}"
                NOTIFY_FAILURES.labels(f"http_{resp.status_code}").inc()
        except httpx.HTTPError as exc:
            error = redact(f"{type(exc).__name__}: {exc}")  # an httpx message may quote the URL's password
            unreachable = True
            NOTIFY_FAILURES.labels("transport").inc()
        except Exception as exc:  # noqa: BLE001 — an unforeseen error must still release the lease below
            error = redact(f"{type(exc).__name__}: {exc}")
            NOTIFY_FAILURES.labels("internal").inc()
        try:
            with session_scope() as session:
                now = utcnow()
                if error is None:
                    values = {"status": "DELIVERED", "delivered_at": now, "last_error": None}
                elif attempts >= self.settings.notify_max_attempts:
                    values = {"status": "FAILED", "last_error": error}
                    NOTIFY_FAILURES.labels("gave_up").inc()
                    log.warning("notification %s to %s failed %d times, giving up: %s", msg_id, url,
                                attempts, error)
                else:
                    values = {"last_error": error,
                              "next_attempt_at": now + timedelta(seconds=backoff_s(attempts, self.settings))}
                mine = OutboxMessage.id == msg_id
                if error is not None:  # a retry must not free a claim another deliverer made after our lease ran out
                    mine = mine & (OutboxMessage.attempts == attempts)
                session.execute(update(OutboxMessage).where(mine).values(claimed_until=None, **values))
                if unreachable:
                    _circuit_failure(session, subscription_id, url, now, self.settings)
                elif answered:  # whatever its circuit counted is over
                    session.execute(delete(NotifyCircuit).where(NotifyCircuit.subscription_id == subscription_id))
        finally:
            with self._lock:
                self._inflight.pop(msg_id, None)
            _due.set()  # a POST thread is free: claim the next message now
