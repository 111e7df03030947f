"""What one command invocation was given (endpoint options, hints) and the client built from it.

Options that every command shares are not passed to the command functions: their callbacks store them
in ``click.Context.meta`` under ``META``, where the client, the output and the error handling find them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from meao.oss.client import MeaoClient, resolve_endpoint

META = "meao.oss"
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def meta() -> dict[str, Any]:
    """The shared options of the current invocation (and what was resolved from them)."""
    return click.get_current_context().meta.setdefault(META, {})


def store(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option callback that keeps the option's value in ``meta()[key]``."""
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.meta.setdefault(META, {})[key] = value
        return value

    return callback


def stack(func: Callable[..., Any], decorators: list[Decorator]) -> Callable[..., Any]:
    """Apply ``decorators`` as if written above ``func`` in this order (so options list in this order)."""
    return functools.reduce(lambda f, deco: deco(f), reversed(decorators), func)


def api_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--os-endpoint``, ``--os-profile``, ``--timeout``: where and how the client talks."""
    return stack(func, [
        click.option("--os-endpoint", metavar="URL", expose_value=False, callback=store("endpoint"),
                     help="MEAO endpoint [default: $MEAO_ENDPOINT, else ~/.config/meao/client.yaml, "
                          "else http://127.0.0.1:8080]"),
        click.option("--os-profile", metavar="NAME", expose_value=False, callback=store("profile"),
                     help="profile of ~/.config/meao/client.yaml [default: $MEAO_PROFILE]"),
        click.option("--timeout", type=click.FloatRange(min=0.1), metavar="SECONDS", expose_value=False,
                     callback=store("timeout"), help="HTTP timeout per request [default: 30]"),
    ])


def add_hints(hints: dict[int, str]) -> None:
    """Command-specific advice for an HTTP status, shown instead of the generic one."""
    meta().setdefault("hints", {}).update(hints)


def client() -> MeaoClient:
    """The client for this invocation, on the endpoint chosen by options, environment or config file."""
    shared = meta()
    endpoint = resolve_endpoint(shared.get("endpoint"), shared.get("profile"), shared.get("timeout"))
    shared["resolved"] = endpoint
    made = MeaoClient(endpoint.url, endpoint.timeout)
    click.get_current_context().call_on_close(made.close)
    return made
