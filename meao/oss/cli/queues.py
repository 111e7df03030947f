"""``meao queues``: the catalogue queue and one queue per MEC host's PoP (ops API ``/ops/v1/queues``)."""

from __future__ import annotations

from typing import Any

import click

from meao.oss.cli.errors import EXIT_FAILED, CommandFailed
from meao.oss.cli.invocation import api_options, client
from meao.oss.cli.jobs import JOB_COLUMNS, job_row
from meao.oss.cli.output import age, emit_list, emit_one, output_options, row
from meao.oss.cli.verbs import api_group, list_command

QUEUE_COLUMNS = ("name", "pops", "depth", "oldest", "running", "failures")

queues = api_group("queues", "Job queues: the catalogue queue and one queue per MEC host's PoP "
                             "(ops API /ops/v1/queues).")


def _queue_row(queue: dict[str, Any]) -> dict[str, Any]:
    return row(queue, {"pops": ",".join(queue.get("pops") or []) or "-",
                       "oldest": age(queue.get("oldestJobAgeSeconds")), "running": len(queue.get("running") or []),
                       "failures": len(queue.get("recentFailures") or [])})


list_command(queues, "Depth, oldest waiting job, running jobs and recent failures of every queue.", QUEUE_COLUMNS,
             lambda made: [_queue_row(q) for q in made.ops.list_queues()])


@queues.command("show")
@click.argument("name")
@api_options
@output_options
def queues_show(name: str) -> None:
    """One queue; its waiting jobs are listed by `meao jobs list --waiting --queue NAME`."""
    raw = client().ops.get_queue(name)
    info = {**_queue_row(raw), "waiting": len(raw.get("waiting") or [])}
    emit_one({k: info.get(k) for k in ("name", "pops", "depth", "oldest", "waiting", "running", "failures")})


@queues.command("purge")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@api_options
@output_options
def queues_purge(name: str, yes: bool) -> None:
    """Drop every job waiting in a queue; their operations go to FAILED_TEMP (retry or fail them)."""
    made = client()
    depth = made.ops.get_queue(name)["depth"]
    if depth == 0:
        click.echo(f"queue {name} is empty; nothing to purge", err=True)
        return
    if not yes:
        question = (f"Purge {depth} waiting job(s) from queue {name}? Their LCM operations go to FAILED_TEMP "
                    "and their onboardings back to CREATED")
        try:
            confirmed = click.confirm(question, err=True)
        except click.Abort:  # end of input: nobody said yes
            click.echo("", err=True)
            confirmed = False
        if not confirmed:
            raise CommandFailed("purge cancelled; nothing was changed",
                                "answer y, or pass --yes when no one can answer (scripts)", code=EXIT_FAILED)
    result = made.ops.purge_queue(name)
    click.echo(f"purged {result['purged']} job(s) from {name}; `meao jobs list --failed` shows the operations "
               "to retry or fail", err=True)
    emit_list([job_row(j) for j in result["jobs"]], JOB_COLUMNS)
