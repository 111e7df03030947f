"""``meao subscription``: subscriptions to package (pkgm) and lifecycle (lcm) notifications.

Each API keeps its own subscriptions; without ``--api`` a command looks in both (pkgm first).
"""

from __future__ import annotations

import json
from typing import Any

import click

from meao.oss.cli.invocation import api_options, client
from meao.oss.cli.output import emit_one, output_options, selected_columns
from meao.oss.cli.verbs import api_group, delete_command, list_command, show_command
from meao.oss.client import SUBSCRIPTION_TYPES, ClientProblem, MeaoClient, api_of

SUBSCRIPTION_COLUMNS = ("id", "api", "subscriptionType", "callbackUri")
ALL_SUBSCRIPTION_TYPES = tuple(t for types in SUBSCRIPTION_TYPES.values() for t in types)
API_CHOICE = click.Choice(tuple(SUBSCRIPTION_TYPES))

subscription = api_group("subscription", "Subscriptions to package (pkgm) and lifecycle (lcm) notifications.")


def _find(made: MeaoClient, sub_id: str, api: str | None) -> tuple[str, dict[str, Any]]:
    """(api, SubscriptionInfo): look in the given API, else in pkgm then lcm."""
    apis = [api] if api else list(SUBSCRIPTION_TYPES)
    for candidate in apis:
        try:
            return candidate, made.subscriptions(candidate).get_subscription(sub_id)
        except ClientProblem as exc:
            if exc.status != 404 or candidate == apis[-1]:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _rows(made: MeaoClient, api: str | None, sub_type: str | None) -> list[dict[str, Any]]:
    apis = [api] if api else [api_of(sub_type)] if sub_type else list(SUBSCRIPTION_TYPES)
    rows = [{**link, "api": name} for name in apis
            for link in made.subscriptions(name).list_subscriptions(sub_type)]
    if "callbackUri" in (selected_columns() or SUBSCRIPTION_COLUMNS):
        for row in rows:  # the link list has no callbackUri; subscriptions are few, read each
            try:
                row["callbackUri"] = made.subscriptions(row["api"]).get_subscription(row["id"]).get("callbackUri")
            except ClientProblem as exc:
                if exc.status != 404:  # deleted meanwhile: leave it blank
                    raise
    return rows


list_command(subscription, "List subscriptions.", SUBSCRIPTION_COLUMNS, _rows,
             [click.option("--api", type=API_CHOICE, help="only this API [default: both]"),
              click.option("--type", "sub_type", type=click.Choice(ALL_SUBSCRIPTION_TYPES),
                           help="only this subscriptionType")])


def _show(made: MeaoClient, sub_id: str, api: str | None) -> dict[str, Any]:
    name, info = _find(made, sub_id, api)
    return {**info, "api": name}


show_command(subscription, "sub_id", "Show one subscription.", _show,
             [click.option("--api", type=API_CHOICE, help="the subscription's API [default: look in both]")])


@subscription.command("create")
@click.option("--type", "sub_type", type=click.Choice(ALL_SUBSCRIPTION_TYPES), required=True,
              help="subscriptionType (it selects the API)")
@click.option("--callback", required=True, metavar="URL", help="callbackUri the notifications are POSTed to")
@click.option("--api", type=API_CHOICE, help="check that --type belongs to this API")
@click.option("--filter", "filter_", metavar="JSON",
              help="the type's filter as JSON (AppPkgFilter, AppInstanceSubscriptionFilter or "
                   "AppLcmOpOccSubscriptionFilter)")
@api_options
@output_options
def subscription_create(sub_type: str, callback: str, api: str | None, filter_: str | None) -> None:
    """Subscribe a callback URL to notifications."""
    if api and api_of(sub_type) != api:
        raise click.UsageError(f"{sub_type} is a {api_of(sub_type)} subscription type, not {api}")
    try:
        parsed = json.loads(filter_) if filter_ else None
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--filter") from exc
    info = client().subscriptions(api_of(sub_type)).create_subscription(sub_type, callback, parsed)
    emit_one({**info, "api": api_of(sub_type)})


delete_command(subscription, "sub_ids", "SUB_ID...", "Delete subscriptions.",
               lambda made, sub_id, api: made.subscriptions(_find(made, sub_id, api)[0]).delete_subscription(sub_id),
               [click.option("--api", type=API_CHOICE, help="the subscriptions' API [default: look in both]")])
