"""The MEC host inventory: edge PoP locations on OpenStack clouds (MEC 003 clause 7.1.4.1).

Hosts are loaded from a YAML file at start (``MEAO_MEC_HOSTS_FILE``) and stored in the database, so
every API process and worker sees the same inventory. The functions that take a ``session`` work inside
the caller's transaction; the others (what the ops API calls) own theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meao.config import get_settings
from meao.db.models import AppInstance, MecHost
from meao.db.session import session_scope
from meao.problems import BadRequest, Conflict, NotFound

FIELDS = ("name", "cloud", "region", "availability_zone", "queue", "location", "served_areas", "latency_ms",
          "services", "features", "networks")


def queue_for(host_id: str) -> str:
    """The Celery queue of a PoP's MEPM-V workers."""
    return f"mecpm.{host_id}"


def validate_host(doc: dict[str, Any], where: str = "MEC host") -> dict[str, Any]:
    """Check one host document; BadRequest naming the field otherwise. Returns normalised values."""
    if not isinstance(doc, dict):
        raise BadRequest(f"{where}: expected a mapping")
    for key in ("id", "cloud"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BadRequest(f"{where}: '{key}' is required and must be a non-empty string")
    unknown = set(doc) - {"id", *FIELDS}
    if unknown:
        raise BadRequest(f"{where} {doc['id']}: unknown field(s) {', '.join(sorted(unknown))}")
    for key, kind in (("served_areas", list), ("services", list), ("features", list),
                      ("latency_ms", dict), ("networks", dict), ("location", dict)):
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            raise BadRequest(f"{where} {doc['id']}: '{key}' must be a {kind.__name__}")
    for key in ("name", "cloud", "region", "availability_zone", "queue"):
        if doc.get(key) is not None and (not isinstance(doc[key], str) or len(doc[key]) > 255):
            raise BadRequest(f"{where} {doc['id']}: '{key}' must be a string of at most 255 characters")
    values = {k: doc.get(k) for k in FIELDS}
    values["name"] = values["name"] or doc["id"]
    values["queue"] = values["queue"] or queue_for(doc["id"])
    return {"id": doc["id"], **values}


def upsert_host(session: Session, doc: dict[str, Any]) -> MecHost:
    """Create or replace one host."""
    values = validate_host(doc)
    host = session.get(MecHost, values["id"])
    if host is None:
        host = MecHost(**values)
        session.add(host)
    else:
        for key, value in values.items():
            setattr(host, key, value)
    session.flush()
    return host


def load_hosts_file(path: Path) -> int:
    """Load ``mec_hosts:`` from a YAML file into the inventory; returns how many hosts."""
    try:
        doc = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"meao: cannot read MEC hosts file {path}: {exc}") from exc
    hosts = doc.get("mec_hosts") if isinstance(doc, dict) else None
    if not isinstance(hosts, list):
        raise SystemExit(f"meao: {path} must hold a list under 'mec_hosts:'")
    with session_scope() as session:
        for i, item in enumerate(hosts):
            try:
                upsert_host(session, item)
            except BadRequest as exc:
                raise SystemExit(f"meao: {path}: entry {i}: {exc.detail}") from exc
    return len(hosts)


def load_configured_hosts() -> int:
    """Load ``MEAO_MEC_HOSTS_FILE`` when set."""
    path = get_settings().mec_hosts_file
    return load_hosts_file(path) if path else 0


def list_hosts(session: Session) -> list[MecHost]:
    """Every host, by id."""
    return list(session.scalars(select(MecHost).order_by(MecHost.id)))


def get_host(session: Session, host_id: str) -> MecHost:
    """One host, or NotFound."""
    host = session.get(MecHost, host_id)
    if host is None:
        raise NotFound(f"MEC host {host_id} is not in the inventory")
    return host


def resolve_selected_host(session: Session, info: dict[str, Any]) -> MecHost:
    """A MECHostInformation (clause 6.2.2.17) → our host: ``hostId.id`` (or hostId.mecHostId) or hostName."""
    host_id = info.get("hostId") or {}
    key = host_id.get("id") or host_id.get("mecHostId") or host_id.get("hostId")
    if key:
        host = session.get(MecHost, str(key))
        if host is not None:
            return host
    if info.get("hostName"):
        host = session.scalars(select(MecHost).where(MecHost.name == info["hostName"])).first()
        if host is not None:
            return host
    raise BadRequest(f"selectedMECHostInfo {info!r} names no MEC host of the inventory; use hostId "
                     "{\"id\": \"<host id>\"} with an id from GET /ops/v1/mec_hosts")


def all_hosts() -> list[MecHost]:
    """Every host of the inventory, by id."""
    with session_scope() as session:
        return list_hosts(session)


def read_host(host_id: str) -> MecHost:
    """One host, or NotFound."""
    with session_scope() as session:
        return get_host(session, host_id)


def create_host(doc: dict[str, Any]) -> MecHost:
    """Add a host; 409 when its id is taken."""
    with session_scope() as session:
        if session.get(MecHost, doc["id"]) is not None:
            raise Conflict(f"MEC host {doc['id']} exists; use PUT /mec_hosts/{doc['id']} to replace it")
        return upsert_host(session, doc)


def put_host(host_id: str, doc: dict[str, Any]) -> tuple[MecHost, bool]:
    """Replace host ``host_id`` or create it; returns the host and whether it was created."""
    if doc.get("id", host_id) != host_id:
        raise BadRequest(f"the body's id {doc.get('id')!r} differs from the path's {host_id!r}")
    with session_scope() as session:
        created = session.get(MecHost, host_id) is None
        return upsert_host(session, {**doc, "id": host_id}), created


def delete_host(host_id: str) -> None:
    """Remove a host; 409 while application instances are placed on it."""
    with session_scope() as session:
        host = get_host(session, host_id)
        placed = session.scalar(select(func.count()).select_from(AppInstance).where(
            AppInstance.mec_host_id == host_id, AppInstance.instantiation_state == "INSTANTIATED"))
        if placed:
            raise Conflict(f"{placed} application instance(s) run on MEC host {host_id}; terminate them first")
        session.delete(host)
