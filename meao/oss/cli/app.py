"""``meao app``: application instances (Mm1 app_lcm, MEC 010-2 clause 7.4).

Two derived columns join the API's fields: ``state`` (instantiatedAppState.operationalState) and
``host`` (the MEC host named by the instance's last completed INSTANTIATE).
"""

from __future__ import annotations

from typing import Any

import click

from meao.oss.cli.invocation import add_hints, api_options, client
from meao.oss.cli.output import emit_one, output_options
from meao.oss.cli.verbs import api_group, delete_command, follow_command, list_command, show_command

APP_COLUMNS = ("id", "appName", "instantiationState", "state", "host")

app = api_group("app", "Application instances (Mm1 app_lcm, MEC 010-2 clause 7.4).")


def _with_derived(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``state`` (operationalState when INSTANTIATED) and ``host`` (the MEC host the MEAO chose)."""
    return [{**inst, "state": (inst.get("instantiatedAppState") or {}).get("operationalState"),
             "host": (inst.get("mecPlatform") or {}).get("mecHostId")} for inst in apps]


list_command(app, "List application instances.", APP_COLUMNS,
             lambda made, filter_: _with_derived(made.lcm.list_apps(filter_)),
             [click.option("--filter", "filter_", metavar="EXPR",
                           help="MEC 009 filter, e.g. '(eq,appName,mec-minimal)'")])
show_command(app, "app_id", "Show one application instance (AppInstanceInfo, plus state and host).",
             lambda made, app_id: _with_derived([made.lcm.get_app(app_id)])[0])


@app.command("create")
@click.argument("appd_id")
@click.option("--name", help="appInstanceName")
@click.option("--description", help="appInstanceDescription")
@api_options
@output_options
def app_create(appd_id: str, name: str | None, description: str | None) -> None:
    """Create an application instance (NOT_INSTANTIATED) of the onboarded, enabled package APPD_ID."""
    add_hints({404: "onboard the package first; `meao package list -c appDId -c onboardingState` shows the appDIds",
               409: "enable the package first: `meao package enable PKG_ID`"})
    made = client()
    emit_one(_with_derived([made.lcm.create_app(appd_id, name, description)])[0])


def _check_operate(app_id: str, state: str, graceful_timeout: int | None) -> None:
    if graceful_timeout is not None and state == "STARTED":
        raise click.UsageError("--graceful-timeout applies to --state STOPPED only")


follow_command(
    app, "instantiate", "app_id", "Instantiate an application instance; prints the LCM operation occurrence.",
    lambda made, app_id, hosts, area: made.lcm.instantiate(app_id, list(hosts), area),
    [click.option("--host", "hosts", multiple=True, metavar="HOST_ID",
                  help="preferred MEC host (repeatable; the MEAO selects the host and prefers these when they fit)"),
     click.option("--area", metavar="AREA", help="servedArea (meao extension): the cell or area of the users")],
    prepare=lambda **_: add_hints(
        {400: "--host takes ids of MEC hosts in the MEAO's inventory (GET <endpoint>/ops/v1/mec_hosts)"}))
follow_command(
    app, "operate", "app_id", "Start or stop an instantiated application instance.",
    lambda made, app_id, state, graceful_timeout: made.lcm.operate(app_id, state, graceful_timeout),
    [click.option("--state", type=click.Choice(["STARTED", "STOPPED"]), required=True, help="changeStateTo"),
     click.option("--graceful-timeout", type=click.IntRange(min=0), metavar="SECONDS",
                  help="stop GRACEFUL with this gracefulStopTimeout [default: FORCEFUL stop]")],
    prepare=_check_operate)
follow_command(
    app, "terminate", "app_id", "Terminate an application instance (it becomes NOT_INSTANTIATED).",
    lambda made, app_id, graceful_timeout: made.lcm.terminate(app_id, graceful_timeout),
    [click.option("--graceful-timeout", type=click.IntRange(min=0), metavar="SECONDS",
                  help="terminate GRACEFUL with this gracefulTerminationTimeout [default: FORCEFUL]")])
delete_command(app, "app_ids", "APP_ID...", "Delete NOT_INSTANTIATED application instances.",
               lambda made, app_id: made.lcm.delete_app(app_id))
