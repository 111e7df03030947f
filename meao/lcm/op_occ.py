"""AppLcmOpOcc state machine (MEC 010-2 clause 6.2.2.13): the only place operationState changes.

Every change is a compare-and-swap UPDATE that names the states it may leave, records
``stateEnteredTime`` and writes the AppLcmOpOccNotification to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from meao.db.models import AppInstance, AppLcmOpOcc, utcnow
from meao.notify.lcm_events import emit_op_occ_notification

log = logging.getLogger(__name__)

STARTING, PROCESSING, COMPLETED, FAILED, FAILED_TEMP = (
    "STARTING", "PROCESSING", "COMPLETED", "FAILED", "FAILED_TEMP")
FINAL_STATES = frozenset({COMPLETED, FAILED})
OPERATIONS = ("INSTANTIATE", "OPERATE", "TERMINATE")

# allowed moves: state → states it may go to (retry: FAILED_TEMP → PROCESSING; fail: → FAILED)
TRANSITIONS: dict[str, frozenset[str]] = {
    STARTING: frozenset({PROCESSING, FAILED_TEMP}),
    PROCESSING: frozenset({COMPLETED, FAILED_TEMP}),
    FAILED_TEMP: frozenset({PROCESSING, FAILED}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
}


def transition(session: Session, op_id: str, to_state: str, *, expect: tuple[str, ...] | None = None,
               where: dict[str, Any] | None = None, instance_values: dict[str, Any] | None = None,
               **values: Any) -> AppLcmOpOcc | None:
    """Move an occurrence to ``to_state`` if it is in one of ``expect`` (default: every state that may).

    ``where`` adds column equalities to the compare-and-swap (e.g. the attempt a worker owns).
    Returns the moved occurrence, or None, changing nothing, when another actor got there first. A final
    state releases the instance for its next operation; ``instance_values`` (the instance's new
    attributes) are written in that same UPDATE, which brings the instance back into ``session``.
    """
    sources = tuple(s for s in (expect or TRANSITIONS) if to_state in TRANSITIONS[s])
    stmt = update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id, AppLcmOpOcc.operation_state.in_(sources))
    for column, value in (where or {}).items():
        stmt = stmt.where(getattr(AppLcmOpOcc, column) == value)
    # RETURNING: the moved row comes back with the UPDATE, not in a SELECT of its own (a round trip)
    op = session.execute(stmt.values(operation_state=to_state, state_entered_time=utcnow(), **values)
                         .returning(AppLcmOpOcc).execution_options(populate_existing=True)).scalar_one_or_none()
    if op is None:
        return None
    if instance_values:
        release = {"current_op_id": case((AppInstance.current_op_id == op_id, None),
                                         else_=AppInstance.current_op_id)} if to_state in FINAL_STATES else {}
        inst = session.execute(update(AppInstance).where(AppInstance.id == op.app_instance_id)
                               .values(**instance_values, **release).returning(AppInstance)
                               # the returned row is the instance's new state: nothing to expire, read again
                               .execution_options(populate_existing=True, synchronize_session=False)).scalar_one()
        # the identity map holds objects weakly: keep the instance for the notifications that follow in this
        # transaction, which then find it there instead of reading it again (a round trip each)
        session.info.setdefault("pinned", []).append(inst)
    elif to_state in FINAL_STATES:
        session.execute(update(AppInstance).where(AppInstance.id == op.app_instance_id,
                                                  AppInstance.current_op_id == op_id)
                        .values(current_op_id=None))
    emit_op_occ_notification(session, op)
    return op
