"""The job contract (Mm3* as Celery messages): task names and what their arguments mean, defined once.

Every job carries ``(subject id, attempt)`` as text, nothing else; the database row of the subject
says what to do. The attempt is the fencing token: a worker may act only on the attempt it claimed.
"""

from __future__ import annotations

#: run the current attempt of an application LCM operation occurrence (its steps, or its rollback);
#: args (op occurrence id, attempt); queue: the MEC host's (``mecpm.<host id>``)
RUN_OP_TASK = "mecpm.run_op"

#: onboard an application package; args (package id, attempt); queue: the catalogue queue
ONBOARD_TASK = "meao.catalogue.onboard"


def job_args(subject: str, attempt: int) -> list[str]:
    """The message arguments of a job on ``subject``'s ``attempt``."""
    return [subject, str(attempt)]


def parse_args(args: list) -> tuple[str, int] | None:
    """(subject, attempt) from a message's arguments, or None when they are not a job of this contract."""
    if len(args) != 2:
        return None
    try:
        return str(args[0]), int(args[1])
    except (TypeError, ValueError):
        return None
