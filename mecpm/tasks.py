"""Celery tasks of the MEPM-V (the Mm3* contract): thin wrappers around ``mecpm.runner``.

Contract (MEC 010-2 clause 7.7, realised as messages): the MEAO sends ``mecpm.run_op(op_id, attempt)``
on queue ``mecpm.<host id>``; the occurrence row in the shared database carries the operation
(INSTANTIATE ≈ configure_platform_for_app + resource orchestration, OPERATE, TERMINATE), its
parameters and the MEC host. The worker reports only through the occurrence's state.
"""

from __future__ import annotations

import mecpm.control  # noqa: F401 — registers the remote-control commands the ops API uses
from meao.celery_app import celery_app
from mecpm.runner import run_operation


@celery_app.task(name="mecpm.run_op", acks_late=True, reject_on_worker_lost=True)
def run_op(op_id: str, attempt: str) -> None:
    """Run one attempt of an application LCM operation occurrence."""
    run_operation(op_id, int(attempt))
