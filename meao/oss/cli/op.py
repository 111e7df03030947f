"""``meao op``: application LCM operation occurrences (MEC 010-2 clauses 7.4.9 to 7.4.13)."""

from __future__ import annotations

import click

from meao.oss.cli.invocation import api_options, client
from meao.oss.cli.output import emit_one, output_options
from meao.oss.cli.progress import op_poll, status_line, wait_options, wait_timeout
from meao.oss.cli.verbs import api_group, follow_command, list_command, show_command
from meao.oss.client import MeaoClient

OP_COLUMNS = ("id", "lcmOperation", "operationState", "appInstanceId")

op = api_group("op", "Application LCM operation occurrences (MEC 010-2 clauses 7.4.9 to 7.4.13).")

list_command(op, "List LCM operation occurrences.", OP_COLUMNS, lambda made, app_id: made.lcm.list_ops(app_id),
             [click.option("--instance", "app_id", metavar="APP_ID",
                           help="only the operations of this application instance")])
show_command(op, "op_id", "Show one LCM operation occurrence (AppLcmOpOcc, with its error when it failed).",
             lambda made, op_id: made.lcm.get_op(op_id))


def retry(made: MeaoClient, op_id: str) -> str:
    """Ask the MEAO to retry a FAILED_TEMP operation; the id to follow is the operation's own."""
    made.lcm.retry_op(op_id)
    return op_id


follow_command(op, "retry", "op_id", "Retry a FAILED_TEMP operation: it continues where it stopped.", retry)
show_command(op, "op_id", "Mark a FAILED_TEMP operation as finally FAILED (what it created is rolled back).",
             lambda made, op_id: made.lcm.fail_op(op_id), name="fail")


@op.command("cancel")
@click.argument("op_id")
@click.option("--mode", type=click.Choice(["GRACEFUL", "FORCEFUL"]), default="GRACEFUL", show_default=True,
              help="CancelMode (table 6.2.2.32.2-1)")
@wait_options
@api_options
@output_options
def op_cancel(op_id: str, mode: str, wait: bool) -> None:
    """Cancel a running operation; it ends FAILED_TEMP (then retry or fail it)."""
    made = client()
    made.lcm.cancel_op(op_id, mode)
    if not wait:
        emit_one(made.lcm.get_op(op_id))
        return
    with status_line() as line:
        result = made.lcm.follow_op(op_id, lambda o: o.get("operationState") not in ("STARTING", "PROCESSING"),
                                    timeout=wait_timeout(), on_poll=op_poll(line))
    emit_one(result)
