"""The MEC host inventory: edge PoP locations on OpenStack clouds (MEC 003 clause 7.1.4.1).

Hosts are loaded from a YAML file at start (``MEAO_MEC_HOSTS_FILE``) and stored in the database, so
every API process and worker sees the same inventory. The functions that take a ``session`` work inside
the caller's transaction; the others (what the ops API calls) own theirs.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import yaml
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from meao import OPENAPI_DIR
from meao.config import get_settings
from meao.db.models import AppInstance, AppLcmOpOcc, MecHost, MepService
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
    if doc.get("services"):
        _check_services(doc["id"], doc["services"], where)
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


# what a platform service of the inventory may say of itself: its MEC 011 ServiceInfo, less what the MEP sets
SERVICE_FIELDS = ("serName", "version", "serCategory", "transportInfo", "serializer", "scopeOfLocality",
                  "consumedLocalOnly")
_PLATFORM_SERVICE_IDS = uuid.UUID("5d0c2a8e-6f4b-4f43-9f1e-0b7a3c1e9d21")  # uuid5 namespace


@lru_cache(maxsize=1)
def _service_info_validator() -> jsonschema.Draft4Validator:
    spec = yaml.safe_load((OPENAPI_DIR / "mp1-service-mgmt.yaml").read_text("utf-8"))
    return jsonschema.Draft4Validator({"$ref": "#/components/schemas/ServiceInfo", "components": spec["components"]})


def platform_service_info(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The Mp1 ServiceInfo of an inventory service that names its transport (``transportInfo``); None for
    one without, which counts for host selection only."""
    if entry.get("transportInfo") is None:
        return None
    info = {k: entry[k] for k in SERVICE_FIELDS if entry.get(k) is not None}
    return {**info, "version": str(entry.get("version") or "1"), "state": "ACTIVE",
            "serializer": entry.get("serializer") or "JSON"}


def platform_service_id(host_id: str, info: dict[str, Any]) -> str:
    """A platform service's serInstanceId: the same at every load of the inventory."""
    return str(uuid.uuid5(_PLATFORM_SERVICE_IDS, f"{host_id}/{info['serName']}/{info['version']}"))


def _check_services(host_id: str, services: list[Any], where: str) -> None:
    for i, entry in enumerate(services):
        at = f"{where} {host_id}: services[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("serName"), str) or not entry["serName"]:
            raise BadRequest(f"{at}: each service is a mapping with a non-empty 'serName'")
        unknown = set(entry) - set(SERVICE_FIELDS)
        if unknown:
            raise BadRequest(f"{at} ({entry['serName']}): unknown field(s) {', '.join(sorted(unknown))}; a "
                             f"service may give {', '.join(SERVICE_FIELDS)}")
        info = platform_service_info(entry)
        if info is not None:
            error = jsonschema.exceptions.best_match(_service_info_validator().iter_errors(info))
            if error is not None:
                path = "/".join(str(p) for p in error.absolute_path) or "(the service)"
                raise BadRequest(f"{at} ({entry['serName']}): {path}: {error.message} (the MEC 011 ServiceInfo "
                                 "apps discover it by over Mp1)")


def sync_platform_services(session: Session, host: MecHost) -> None:
    """Make the host's MEP registry hold its inventory's platform services (those with a transportInfo)
    as ServiceInfo that apps discover over Mp1, beside the services the apps register."""
    wanted = {}
    for entry in host.services or []:
        info = platform_service_info(entry)
        if info is not None:
            wanted[platform_service_id(host.id, info)] = info
    rows = {r.ser_instance_id: r for r in session.scalars(select(MepService).where(
        MepService.host_id == host.id, MepService.app_instance_id.is_(None)))}
    for ser_id, row in rows.items():
        if ser_id not in wanted:
            session.delete(row)
        elif row.body != wanted[ser_id]:
            row.body, row.version = wanted[ser_id], row.version + 1
    session.add_all(MepService(ser_instance_id=ser_id, host_id=host.id, app_instance_id=None,
                               ser_name=info["serName"], body=info)
                    for ser_id, info in wanted.items() if ser_id not in rows)


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
    sync_platform_services(session, host)
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


def find_selected_host(session: Session, info: dict[str, Any]) -> MecHost | None:
    """A MECHostInformation (clause 6.2.2.17) → our host: ``hostId.id`` (or hostId.mecHostId) or hostName;
    None when it names no host of the inventory."""
    host_id = info.get("hostId") or {}
    key = host_id.get("id") or host_id.get("mecHostId") or host_id.get("hostId")
    if key:
        host = session.get(MecHost, str(key))
        if host is not None:
            return host
    if info.get("hostName"):
        return session.scalars(select(MecHost).where(MecHost.name == info["hostName"])).first()
    return None


class HostPreference(NamedTuple):
    """What an InstantiateAppRequest's selectedMECHostInfo names: hosts of the inventory (``known``, in the
    request's order, each once) and the MECHostInformation items that name none (``unknown``)."""

    known: list[MecHost]
    unknown: list[dict[str, Any]]


def host_preference(session: Session, selected: list[dict[str, Any]]) -> HostPreference:
    """Resolve selectedMECHostInfo against the inventory; what names no host is kept aside, not refused."""
    known: dict[str, MecHost] = {}
    unknown = []
    for info in selected:
        host = find_selected_host(session, info)
        if host is None:
            unknown.append(info)
        else:
            known.setdefault(host.id, host)
    return HostPreference(list(known.values()), unknown)


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
        session.execute(delete(MepService).where(MepService.host_id == host_id, MepService.app_instance_id.is_(None)))
        session.delete(host)
