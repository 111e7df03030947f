"""The commands every group builds the same way: list, show, delete, and start-then-follow an LCM operation.

Each factory adds the shared options after the command's own (``--os-*``, then ``-f``/``-c`` where it
prints), so ``--help`` lists them in the same order for every group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from meao.oss.cli.errors import EXIT_CODES_EPILOG, ApiGroup, each
from meao.oss.cli.invocation import Decorator, api_options, client, stack
from meao.oss.cli.output import emit_list, emit_one, output_options
from meao.oss.cli.progress import op_poll, status_line, wait_options, wait_timeout
from meao.oss.client import MeaoClient


def api_group(name: str, help: str) -> click.Group:
    """A command group of ``meao`` whose client errors become a message and an exit code (``ApiGroup``)."""
    return ApiGroup(name, help=help, epilog=EXIT_CODES_EPILOG)


def list_command(group: click.Group, help: str, columns: Sequence[str],
                 rows: Callable[..., list[dict[str, Any]]], options: Sequence[Decorator] = ()) -> click.Command:
    """``GROUP list``: ``rows(client, **options)`` printed with ``columns`` unless ``-c`` selects others."""
    def run(**kwargs: Any) -> None:
        emit_list(rows(client(), **kwargs), columns)

    return group.command("list", help=help)(stack(run, [*options, api_options, output_options]))


def show_command(group: click.Group, argument: str, help: str, fetch: Callable[..., dict[str, Any]],
                 options: Sequence[Decorator] = (), name: str = "show") -> click.Command:
    """``GROUP show ID`` (or another ``name``): print the one resource ``fetch(client, ID, **options)``."""
    def run(**kwargs: Any) -> None:
        emit_one(fetch(client(), **kwargs))

    return group.command(name, help=help)(
        stack(run, [click.argument(argument), *options, api_options, output_options]))


def delete_command(group: click.Group, argument: str, metavar: str, help: str,
                   action: Callable[..., None], options: Sequence[Decorator] = ()) -> click.Command:
    """``GROUP delete ID...``: ``action(client, ID, **options)`` for each id (see ``errors.each``)."""
    def run(**kwargs: Any) -> None:
        ids = kwargs.pop(argument)
        made = client()
        each(ids, lambda item: action(made, item, **kwargs))

    return group.command("delete", help=help)(
        stack(run, [click.argument(argument, nargs=-1, required=True, metavar=metavar), *options, api_options]))


def follow_op(made: MeaoClient, op_id: str, wait: bool) -> None:
    """Print the LCM operation occurrence; with ``wait``, once it has stopped (progress on stderr)."""
    if wait:
        with status_line() as line:
            op = made.lcm.wait_op(op_id, timeout=wait_timeout(), on_poll=op_poll(line))
    else:
        op = made.lcm.get_op(op_id)
    emit_one(op)


def follow_command(group: click.Group, name: str, argument: str, help: str, start: Callable[..., str],
                   options: Sequence[Decorator] = (), prepare: Callable[..., None] | None = None) -> click.Command:
    """``GROUP NAME ID``: ``start(client, ID, **options)`` returns an op occurrence id, printed or followed.

    ``prepare(ID, **options)`` runs before the client is made: checks of the options, command hints.
    """
    def run(wait: bool, **kwargs: Any) -> None:
        if prepare is not None:
            prepare(**kwargs)
        made = client()
        follow_op(made, start(made, **kwargs), wait)

    return group.command(name, help=help)(
        stack(run, [click.argument(argument), *options, wait_options, api_options, output_options]))
