"""Celery tasks of the MEPM-V (the Mm3* contract): thin wrappers around ``mecpm.runner``.

Contract (``meao.jobs.contract``; MEC 010-2 clause 7.7, realised as messages): the MEAO's outbox sends
``mecpm.run_op(op_id, attempt)`` on queue ``mecpm.<host id>``; the occurrence row in the shared database
carries the operation (INSTANTIATE ≈ configure_platform_for_app + resource orchestration, OPERATE,
TERMINATE), its parameters, the MEC host and what the attempt runs (its steps, or their rollback). The
worker reports only through the occurrence's state, every write fenced by its lease on the attempt.
"""

from __future__ import annotations

import mecpm.control  # noqa: F401 — registers the remote-control commands the ops API uses
from meao.celery_app import celery_app
from meao.jobs.contract import RUN_OP_TASK
from mecpm.runner import run_operation


@celery_app.task(name=RUN_OP_TASK, acks_late=True, reject_on_worker_lost=True)
def run_op(op_id: str, attempt: str) -> None:
    """Run one attempt of an application LCM operation occurrence."""
    run_operation(op_id, int(attempt))
