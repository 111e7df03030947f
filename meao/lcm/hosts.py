"""The MEC host inventory: edge PoP locations on OpenStack clouds (MEC 003 clause 7.1.4.1).

Hosts are loaded from a YAML file at start (``MEAO_MEC_HOSTS_FILE``) and stored in the database, so
every API process and worker sees the same inventory. The functions that take a ``session`` work inside
the caller's transaction; the others (what the ops API calls) own theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from meao.config import get_settings
from meao.db.models import AppInstance, AppLcmOpOcc, MecHost
from meao.db.session import session_scope
from meao.lcm.op_occ import FINAL_STATES
from meao.problems import BadRequest, Conflict, NotFound, ProblemError

FIELDS = ("name", "cloud", "region", "availability_zone", "queue", "location", "served_areas", "latency_ms",
          "services", "features", "networks", "mep_url")
# Where a host's servers live and which workers reach them: fixed while anything runs or lives there.
POINTING = ("cloud", "queue", "mep_url")
_BOOKKEEPING = ("cloud", "host")  # what the runner adds to every instance's resources; not resources


class HostInUse(ProblemError, status=409, title="MEC host in use"):
    """Operations or application instances still need the host where it is; ``detail`` names them."""


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
    mep_url = doc.get("mep_url")
    if mep_url is not None and (not isinstance(mep_url, str) or len(mep_url) > 512
                                or not mep_url.startswith(("http://", "https://"))):
        raise BadRequest(f"{where} {doc['id']}: 'mep_url' must be the http(s) URL where the host's MEP serves "
                         "(`meao mep serve --host-id " + doc["id"] + "`), or absent for the MEP in `meao serve`")
    values = {k: doc.get(k) for k in FIELDS}
    values["name"] = values["name"] or doc["id"]
    values["queue"] = values["queue"] or queue_for(doc["id"])
    return {"id": doc["id"], **values}


def upsert_host(session: Session, doc: dict[str, Any]) -> MecHost:
    """Create or replace one host; HostInUse when that changes the cloud or queue of a host in use."""
    values = validate_host(doc)
    host = session.get(MecHost, values["id"], with_for_update=True)
    if host is None:
        host = MecHost(**values)
        session.add(host)
    else:
        moved = [k for k in POINTING if getattr(host, k) != values[k]]
        if moved:
            _refuse_if_in_use(session, host, f"its {' and '.join(moved)} cannot change",
                              "or add a new MEC host for the new " + " and ".join(moved))
        for key, value in values.items():
            setattr(host, key, value)
    session.flush()
    return host


def host_users(session: Session, host_id: str) -> list[str]:
    """What still needs the host where it is: unfinished operations on it, and instances with resources there.

    An instance counts while it is INSTANTIATED or its recorded resources hold anything (an instantiate
    under way, or one that failed and was not rolled back yet); a terminated one holds nothing.
    """
    ops = session.execute(select(AppLcmOpOcc.id, AppLcmOpOcc.lcm_operation, AppLcmOpOcc.operation_state).where(
        AppLcmOpOcc.mec_host_id == host_id, AppLcmOpOcc.operation_state.notin_(FINAL_STATES))
        .order_by(AppLcmOpOcc.start_time)).all()
    instances = session.scalars(select(AppInstance).where(or_(
        AppInstance.mec_host_id == host_id, AppInstance.resources["host"].as_string() == host_id))
        .order_by(AppInstance.created_at)).all()
    held = [i.id for i in instances if i.instantiation_state == "INSTANTIATED"
            or any(v for k, v in (i.resources or {}).items() if k not in _BOOKKEEPING)]
    return ([f"operation {op_id} ({kind}, {state})" for op_id, kind, state in ops]
            + [f"application instance {inst_id}" for inst_id in held])


def _refuse_if_in_use(session: Session, host: MecHost, what: str, alternative: str = "") -> None:
    users = host_users(session, host.id)
    if not users:
        return
    shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
    raise HostInUse(f"MEC host {host.id} (cloud {host.cloud}, queue {host.queue}) is in use by {shown}: {what} "
                    "while their servers and jobs are there. Let running operations finish, retry or fail "
                    "FAILED_TEMP ones (`meao op retry ID` or `meao op fail ID`), terminate the instances, "
                    f"then try again{', ' + alternative if alternative else ''}.")


def load_hosts_file(path: Path) -> int:
    """Load ``mec_hosts:`` from a YAML file into the inventory; returns how many hosts."""
    try:
        doc = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"meao: cannot read MEC hosts file {path}: {exc}") from exc
    hosts = doc.get("mec_hosts") if isinstance(doc, dict) else None
    if not isinstance(hosts, list):
        raise SystemExit(f"meao: {path} must hold a list under 'mec_hosts:'")
    with session_scope() as session:  # the whole file or nothing
        for i, item in enumerate(hosts):
            try:
                upsert_host(session, item)
            except (BadRequest, HostInUse) as exc:
                raise SystemExit(f"meao: {path}: entry {i}: {exc.detail} Nothing of the file was loaded; "
                                 "fix it or the hosts' users, then start again.") from exc
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
    """Remove a host; HostInUse (409) while operations or instances still need it."""
    with session_scope() as session:
        host = session.get(MecHost, host_id, with_for_update=True) or get_host(session, host_id)
        _refuse_if_in_use(session, host, "it cannot be removed")
        session.delete(host)
