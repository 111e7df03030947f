"""At-least-once delivery of outbox notifications to subscribers' callbackUri.

A background thread in every worker process claims due messages (compare-and-swap on ``attempts``,
so several processes can deliver side by side), POSTs them in parallel with a short timeout, and
reschedules failures with exponential backoff. A dead subscriber costs a timeout on one delivery
thread, never a lifecycle or onboarding job.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from meao.config import Settings
from meao.db.models import OutboxMessage, Subscription, utcnow
from meao.db.session import session_scope
from meao.metrics import NOTIFY_FAILURES
from meao.notify.callback_auth import CallbackAuthenticator
from meao.outbound import OutboundGate, OutboundPolicy, Resolver
from meao.redaction import redact

log = logging.getLogger(__name__)
LEASE_S = 120  # a claimed message is retried after this if its deliverer died mid-POST
_due = threading.Event()  # set by wake(): this process committed a notification; look now, not at the next poll


def wake() -> None:
    """Tell this process's deliverer that a notification was just committed (it looks at once)."""
    _due.set()


def backoff_s(attempts: int, settings: Settings) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: exponential, capped, jittered."""
    base = min(settings.notify_backoff_base_s * 2 ** max(attempts - 1, 0), settings.notify_backoff_max_s)
    return base * random.uniform(0.8, 1.2)


class Deliverer:
    """Polls the outbox and delivers due notifications."""

    def __init__(self, settings: Settings, poll_s: float = 0.2, parallel: int = 4,
                 resolver: Resolver | None = None) -> None:
        self.settings = settings
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="meao-notify")
        # callbackUri and tokenEndpoint connections only where the outbound policy allows (resolver: tests)
        self._client = OutboundGate(OutboundPolicy.for_notifications(settings), resolver).client(
            timeout=settings.notify_timeout_s, follow_redirects=False)
        self._callback_auth = CallbackAuthenticator()  # the subscriptions' credentials; tokens cached
        self._thread = threading.Thread(target=self._loop, name="meao-deliverer", daemon=True)
        self._inflight: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the polling thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; in-flight POSTs finish or time out."""
        self._stop.set()
        _due.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database may be briefly unavailable; keep going
                log.exception("outbox poll failed")
            _due.wait(self.poll_s)
            _due.clear()

    def run_once(self) -> int:
        """Claim due messages and hand them to the POST pool; returns how many were claimed."""
        now = utcnow()
        with session_scope() as session:
            due = session.execute(
                select(OutboxMessage.id, OutboxMessage.attempts)
                .where(OutboxMessage.status == "PENDING", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id).limit(50)).all()
        claimed = 0
        for msg_id, attempts in due:
            with self._lock:
                if msg_id in self._inflight:
                    continue
            with session_scope() as session:
                n = session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == msg_id, OutboxMessage.attempts == attempts,
                                                OutboxMessage.status == "PENDING")
                    .values(attempts=attempts + 1, next_attempt_at=now + timedelta(seconds=LEASE_S))).rowcount
                if n != 1:
                    continue
                msg = session.get(OutboxMessage, msg_id)
                sub = session.get(Subscription, msg.subscription_id)
                job = (msg.id, msg.callback_uri, msg.payload, attempts + 1, sub.authentication if sub else None)
            with self._lock:
                self._inflight.add(msg_id)
            self._pool.submit(self._deliver, *job)
            claimed += 1
        return claimed

    def _deliver(self, msg_id: int, url: str, payload: dict, attempts: int,
                 authentication: dict | None = None) -> None:
        error = None  # never holds a credential: httpx and CredentialsError messages name only URLs and ids
        try:
            resp = self._client.post(url, json=payload, auth=self._callback_auth.auth_for(authentication))
            if not 200 <= resp.status_code < 300:
                error = f"subscriber answered HTTP {resp.status_code}"
                NOTIFY_FAILURES.labels(f"http_{resp.status_code}").inc()
        except httpx.HTTPError as exc:
            error = redact(f"{type(exc).__name__}: {exc}")  # an httpx message may quote the URL's password
            NOTIFY_FAILURES.labels("transport").inc()
        try:
            with session_scope() as session:
                if error is None:
                    values = {"status": "DELIVERED", "delivered_at": utcnow(), "last_error": None}
                elif attempts >= self.settings.notify_max_attempts:
                    values = {"status": "FAILED", "last_error": error}
                    NOTIFY_FAILURES.labels("gave_up").inc()
                    log.warning("notification %s to %s failed %d times, giving up: %s", msg_id, url,
                                attempts, error)
                else:
                    values = {"last_error": error,
                              "next_attempt_at": utcnow() + timedelta(seconds=backoff_s(attempts, self.settings))}
                session.execute(update(OutboxMessage).where(OutboxMessage.id == msg_id).values(**values))
        finally:
            with self._lock:
                self._inflight.discard(msg_id)
