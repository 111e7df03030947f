"""``meao workers``: MEPM-V workers, what each runs, heartbeat, drain and resume (ops API ``/ops/v1/workers``)."""

from __future__ import annotations

from typing import Any

import click

from meao.oss.cli.invocation import api_options, client
from meao.oss.cli.output import age, row
from meao.oss.cli.verbs import api_group, list_command

WORKER_COLUMNS = ("name", "status", "pops", "heartbeat", "concurrency", "running", "reserved", "jobsDone")

workers = api_group("workers", "MEPM-V workers: what each runs, heartbeat, drain and resume (ops API /ops/v1/workers).")


def _worker_row(worker: dict[str, Any]) -> dict[str, Any]:
    return row(worker, {"pops": ",".join(worker.get("pops") or []) or "-",
                        "heartbeat": age(worker.get("heartbeatAgeSeconds")),
                        "running": len(worker.get("running") or [])})


list_command(workers, "Every worker that answers or sent a heartbeat recently.", WORKER_COLUMNS,
             lambda made: [_worker_row(w) for w in made.ops.list_workers()])


def _control_command(action: str, help: str) -> None:
    def run(name: str) -> None:
        click.echo(client().ops.control_worker(name, action)["message"])

    workers.command(action, help=help)(click.argument("name")(api_options(run)))


_control_command("drain", "Stop a worker taking new jobs; the jobs it runs finish (`meao workers resume` undoes it).")
_control_command("resume", "Let a drained worker take jobs again.")
