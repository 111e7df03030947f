"""The transactional job outbox: a job is a row written in the transaction of the change that needs it.

So a job cannot be lost between a commit and a send: if the broker is down, the API process dies right
after its commit, or Redis drops the message, the row is still there and a dispatcher (every API and
worker process runs one, :mod:`meao.jobs.dispatcher`) sends it, or sends it again when no worker
claimed it in time. A worker's claim of the subject's attempt settles the row, so a claimed job is
never sent again; a message that arrives twice finds the attempt taken and does nothing.

States: PENDING (written, not sent) → SENT → CLAIMED (a worker took the attempt) or DONE (the
attempt ended without a worker: cancelled, purged, superseded).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from meao.db.clock import db_now
from meao.db.models import Job
from meao.jobs.contract import job_args

PENDING, SENT, CLAIMED, DONE = "PENDING", "SENT", "CLAIMED", "DONE"
OPEN = (PENDING, SENT)


def add(session: Session, task: str, subject: str, attempt: int, queue: str) -> Job:
    """Write the job of ``subject``'s ``attempt`` in the caller's transaction; the dispatcher sends it."""
    job = Job(task=task, args=job_args(subject, attempt), queue=queue, subject=subject, attempt=attempt,
              state=PENDING, sends=0, send_after=db_now())
    session.add(job)
    return job


def settle(session: Session, subject: str, attempt: int, state: str = CLAIMED) -> int:
    """Close the open jobs of ``subject`` up to ``attempt``: CLAIMED by a worker, or DONE without one."""
    return session.execute(update(Job).where(Job.subject == subject, Job.attempt <= attempt,
                                             Job.state.in_(OPEN))
                           .values(state=state, claimed_at=db_now())).rowcount
