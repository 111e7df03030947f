"""Mp1 notifications from the MEP to apps: AppTerminationNotification and SerAvailabilityNotification.

Each is POSTed to the subscription's callbackReference from a small thread pool, retried with backoff
until it is accepted (2xx) or its deadline passes; a dead app never holds up an Mp1 or Mm5 answer. A
graceful stop does not depend on the notification arriving: without a confirmation, its timer runs out.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session

from meao.config import get_settings

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mep-notify")
_PENDING = "mep.notify.pending"  # session.info key: what to send once the session's transaction commits


def _deliver(url: str, payload: dict[str, Any], deadline: float) -> bool:
    delay = 0.2
    timeout = get_settings().mep.notify_timeout_s
    while True:
        try:
            resp = httpx.post(url, json=payload, timeout=timeout)
            if 200 <= resp.status_code < 300:
                return True
            reason = f"answered {resp.status_code}"
        except httpx.HTTPError as exc:
            reason = f"did not answer ({exc.__class__.__name__})"
        if time.monotonic() + delay > deadline:
            log.warning("MEP: %s to %s %s; giving up", payload.get("notificationType"), url, reason)
            return False
        log.info("MEP: %s to %s %s; retrying in %.1f s", payload.get("notificationType"), url, reason, delay)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def send(url: str, payload: dict[str, Any], within_s: float) -> None:
    """Deliver ``payload`` to ``url`` in the background, trying for at most ``within_s`` seconds."""
    _pool.submit(_deliver, url, payload, time.monotonic() + max(within_s, 1.0))


def send_after_commit(session: Session, url: str, payload: dict[str, Any], within_s: float) -> None:
    """``send`` once ``session``'s transaction commits (an app told of a change can read it); never when it
    rolls back (nothing changed)."""
    session.info.setdefault(_PENDING, []).append((url, payload, within_s))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for url, payload, within_s in session.info.pop(_PENDING, []):
        send(url, payload, within_s)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous: Any) -> None:
    if previous.parent is None:  # the outermost transaction, not a savepoint
        session.info.pop(_PENDING, None)
