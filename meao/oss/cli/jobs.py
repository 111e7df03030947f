"""``meao jobs``: jobs waiting in queues, running in workers, or failed (ops API ``/ops/v1/jobs``)."""

from __future__ import annotations

from typing import Any

import click

from meao.oss.cli.invocation import meta
from meao.oss.cli.op import retry
from meao.oss.cli.output import age, row, since
from meao.oss.cli.verbs import api_group, follow_command, list_command

JOB_COLUMNS = ("state", "queue", "lcmOperation", "appLcmOpOccId", "step", "worker", "age", "error")
ERROR_CELL = 60

jobs = api_group("jobs", "Jobs: waiting in queues, running in workers, failed (ops API /ops/v1/jobs).")


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    """A job with its ``age`` and its error's text, cut short for a table."""
    error = job.get("error") or {}
    text = str(error.get("detail") or error.get("title") or "")
    if meta().get("format") in (None, "table") and len(text) > ERROR_CELL:
        text = text[:ERROR_CELL - 1] + "…"  # `-f json` or `meao op show` has it whole
    return row(job, {"age": age(since(job.get("enqueuedAt") or job.get("since"))), "error": text})


list_command(jobs, "List jobs: waiting (oldest first), running, failed.", JOB_COLUMNS,
             lambda made, state, queue: [job_row(j) for j in made.ops.list_jobs(state, queue)],
             [click.option("--failed", "state", flag_value="FAILED", help="only failed jobs (operations in FAILED_TEMP)"),
              click.option("--running", "state", flag_value="RUNNING", help="only jobs a worker runs now"),
              click.option("--waiting", "state", flag_value="WAITING", help="only jobs waiting in a queue"),
              click.option("--queue", metavar="NAME", help="only the jobs of this queue")])
follow_command(jobs, "retry", "op_id",
               "Retry a failed job: its FAILED_TEMP operation continues where it stopped (same as `meao op retry`).",
               retry)
