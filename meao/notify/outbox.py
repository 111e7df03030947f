"""The transactional outbox: notifications are rows written with the state change they report.

``meao.notify.delivery`` sends them after commit; a notification lost with a rolled back change was
never true.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from meao.config import get_settings
from meao.db.models import OutboxMessage, Subscription

# (notification id, subscription id, public base URL) → the notification's JSON
PayloadOf = Callable[[str, str, str], dict[str, Any]]


def write(session: Session, subs: Sequence[Subscription], notification_type: str, payload_of: PayloadOf) -> int:
    """One message per subscription, in the caller's transaction; returns how many.

    All copies share one notification id (MEC 010-2 clauses 6.2.2.16, 6.2.3.6.2).
    """
    notification_id = str(uuid.uuid4())
    base = get_settings().public_url
    for sub in subs:
        session.add(OutboxMessage(subscription_id=sub.id, callback_uri=sub.callback_uri,
                                  notification_id=notification_id, notification_type=notification_type,
                                  payload=payload_of(notification_id, sub.id, base)))
    return len(subs)
