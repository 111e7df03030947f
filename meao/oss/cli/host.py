"""``meao host``: MEC hosts, the edge PoP inventory (ops API ``/ops/v1/mec_hosts``)."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from meao.oss.cli.invocation import api_options, client
from meao.oss.cli.output import emit_list, output_options
from meao.oss.cli.verbs import api_group, delete_command, list_command, show_command

HOST_COLUMNS = ("id", "name", "cloud", "availabilityZone", "queue", "servedAreas")

host = api_group("host", "MEC hosts: the edge PoP inventory (ops API /ops/v1/mec_hosts).")

list_command(host, "List MEC hosts.", HOST_COLUMNS, lambda made: made.ops.list_hosts())
show_command(host, "host_id", "Show one MEC host.", lambda made, host_id: made.ops.get_host(host_id))


@host.command("set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_options
@output_options
def host_set(file: Path) -> None:
    """Create or replace MEC hosts from a YAML/JSON file (one MecHost, or a list under `mec_hosts:`).

    The cloud or queue of a host that operations or instances use cannot change (409).
    """
    try:
        doc = yaml.safe_load(file.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from exc
    items = doc.get("mec_hosts") if isinstance(doc, dict) and "mec_hosts" in doc else [doc]
    if not all(isinstance(i, dict) and i.get("id") for i in items):
        raise click.BadParameter("every host needs an 'id' (and a 'cloud')", param_hint="FILE")
    made = client()
    emit_list([made.ops.put_host(item) for item in items], HOST_COLUMNS)


delete_command(host, "host_ids", "HOST_ID...", "Delete MEC hosts (409 while operations or instances use them).",
               lambda made, host_id: made.ops.delete_host(host_id))
show_command(host, "host_id", "Show what OpenStack says is free for a MEC host, and the project's quota headroom.",
             lambda made, host_id, refresh: made.ops.host_capacity(host_id, refresh),
             [click.option("--refresh", is_flag=True, help="read OpenStack now instead of the brief cache")],
             name="capacity")
