"""The chaos suite's last check: OpenStack holds exactly what the database records, no orphan, no duplicate."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, text

INSTANCE_KEY = "meao_app_instance_id"


def recorded(db_url: str) -> dict[str, dict[str, Any]]:
    """Every instance's recorded resources, by instance id."""
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(text("select id, resources from app_instance")).all()
    finally:
        eng.dispose()
    out = {}
    for iid, resources in rows:
        if isinstance(resources, str):
            import json

            resources = json.loads(resources)
        out[iid] = resources or {}
    return out


def _made_since(resource, since: datetime) -> bool:
    made = getattr(resource, "created_at", None)
    return bool(made) and datetime.fromisoformat(str(made)) >= since


def audit(db_url: str, os_conn, since: datetime) -> list[str]:
    """What differs between the VIM and the database's records: per instance, and for whatever meao made
    at the VIM since ``since`` for an instance the database no longer knows (an orphan)."""
    records = recorded(db_url)
    ours = set(records)
    problems: list[str] = []
    servers: dict[str, list[str]] = {}
    for srv in os_conn.compute.servers():
        owner = (srv.metadata or {}).get(INSTANCE_KEY)
        if owner in ours:
            servers.setdefault(owner, []).append(srv.id)
        elif owner and _made_since(srv, since):
            problems.append(f"server {srv.id} ({srv.name}) of instance {owner}, which the database does not know")
    ports: dict[str, list[str]] = {}
    for port in os_conn.network.ports():
        name = port.name or ""
        iid = name[len("meao-"):len("meao-") + 36] if name.startswith("meao-") else None
        if iid in ours:
            ports.setdefault(iid, []).append(port.id)
        elif iid and _made_since(port, since):
            problems.append(f"port {port.id} ({name}) of instance {iid}, which the database does not know")
    for iid in sorted(ours):
        res = records.get(iid) or {}
        want_server = {res["server_id"]} if res.get("server_id") else set()
        have = servers.get(iid, [])
        if len(have) != len(set(have)) or set(have) != want_server:
            problems.append(f"instance {iid}: Nova has servers {sorted(have)}, the database records {sorted(want_server)}")
        want_ports = set((res.get("ports") or {}).values())
        have_ports = ports.get(iid, [])
        if set(have_ports) != want_ports:
            problems.append(f"instance {iid}: Neutron has ports {sorted(have_ports)}, the database records "
                            f"{sorted(want_ports)}")
    return problems


def duplicate_images(os_conn) -> dict[str, int]:
    """meao's Glance images sharing a checksum: each image should exist once per cloud."""
    counts = Counter((img.properties or {}).get("meao_checksum") for img in os_conn.image.images(tag="meao"))
    return {k: n for k, n in counts.items() if k and n > 1}
