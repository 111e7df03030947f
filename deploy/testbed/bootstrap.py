"""Test bed set-up steps that need the APIs running; run by up.sh inside the service venv.

``identity``: service project and users, the member user ``demo``, the catalogue, clouds.yaml.
``compute``: waits for the nova-compute hosts, maps them into the cell, puts host ``compute<i>`` in
aggregate and availability zone ``az<i>``, sets the demo project's quotas.
Every step finds what exists before creating, so a restart on kept state runs them again safely.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openstack
import yaml

KEYSTONE = "http://127.0.0.1:5000/v3"
ENDPOINTS = {  # service name -> (type, url)
    "glance": ("image", "http://127.0.0.1:9292"),
    "placement": ("placement", "http://127.0.0.1:8778"),
    "nova": ("compute", "http://127.0.0.1:8774/v2.1"),
    "neutron": ("network", "http://127.0.0.1:9696"),
}


def log(msg: str) -> None:
    print(f"[bootstrap {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def retry(what: str, fn: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Call ``fn`` until it returns a true value or ``timeout`` passes; errors count as not yet."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - services are still starting
            last = exc
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}: {last}")


def cloud_entry(user: str, project: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "auth": {"auth_url": KEYSTONE, "username": user, "password": password, "project_name": project,
                 "user_domain_name": "Default", "project_domain_name": "Default"},
        "region_name": "RegionOne", "identity_api_version": 3, "interface": "public", **extra,
    }


def admin_connection(password: str) -> openstack.connection.Connection:
    return openstack.connect(**cloud_entry("admin", "admin", password))


def identity(args: argparse.Namespace) -> None:
    conn = admin_connection(args.password)
    retry("keystone", lambda: list(conn.identity.regions()), args.timeout)
    idn = conn.identity
    roles = {name: idn.find_role(name) or idn.create_role(name=name)
             for name in ("admin", "member", "reader", "service")}
    projects = {name: idn.find_project(name, domain_id="default")
                or idn.create_project(name=name, domain_id="default") for name in ("service", "demo")}

    def user(name: str) -> Any:
        return idn.find_user(name, domain_id="default") or idn.create_user(
            name=name, password=args.password, domain_id="default")

    for service in ENDPOINTS:
        u = user(service)
        for role in ("admin", "service"):
            idn.assign_project_role_to_user(projects["service"], u, roles[role])
    idn.assign_project_role_to_user(projects["demo"], user("demo"), roles["member"])

    for name, (stype, url) in ENDPOINTS.items():
        svc = next(iter(idn.services(type=stype)), None) or idn.create_service(name=name, type=stype)
        have = {e.interface for e in idn.endpoints(service_id=svc.id)}
        for interface in ("public", "internal"):
            if interface not in have:
                idn.create_endpoint(service_id=svc.id, interface=interface, url=url, region_id="RegionOne")

    clouds = {"clouds": {
        "admin": cloud_entry("admin", "admin", args.password),
        # meao_admin_cloud: meao's VIM adapter does privileged calls (flavors, capacity) with it.
        "demo": cloud_entry("demo", "demo", args.password, meao_admin_cloud="admin"),
    }}
    if args.notification_url:  # meao_notification_url: Nova's versioned notifications end its waits early
        for entry in clouds["clouds"].values():
            entry["meao_notification_url"] = args.notification_url
    path = Path(args.state) / "clouds.yaml"
    path.write_text(yaml.safe_dump(clouds, sort_keys=False))
    path.chmod(0o600)
    log(f"identity ready; wrote {path}")


def compute(args: argparse.Namespace) -> None:
    conn = admin_connection(args.password)
    hosts = [f"compute{i}" for i in range(1, args.hosts + 1)]

    def computes_up() -> bool:
        for host in hosts if args.pids else ():
            pid_file = Path(args.pids) / f"nova-{host}.pid"
            if not Path(f"/proc/{pid_file.read_text().strip()}").exists():
                raise SystemExit(f"nova-{host} exited; see its log in {Path(args.state) / 'log'}")
        up = {s.host for s in conn.compute.services(binary="nova-compute") if s.state == "up"}
        return set(hosts) <= up

    retry("nova-compute services " + ", ".join(hosts), computes_up, args.timeout)
    retry("resource providers in placement",
          lambda: set(hosts) <= {rp.name for rp in conn.placement.resource_providers()}, args.timeout)
    # Discover ourselves: the scheduler's periodic discovery is off (and would come late).
    subprocess.run([args.nova_manage, "--config-file", args.nova_conf, "cell_v2", "discover_hosts"],
                   check=True)

    for i, host in enumerate(hosts, start=1):
        name = f"az{i}"
        agg = conn.compute.find_aggregate(name) or conn.compute.create_aggregate(
            name=name, availability_zone=name)
        if host not in (agg.hosts or []):
            conn.compute.add_host_to_aggregate(agg, host)

    demo = conn.identity.find_project("demo", domain_id="default")
    conn.set_compute_quotas(demo.id, instances=args.quota_instances, cores=args.quota_cores,
                            ram=args.quota_ram_mb)
    conn.set_network_quotas(demo.id, port=args.quota_ports)
    retry("glance", lambda: list(conn.image.images()) is not None, args.timeout)
    retry("neutron", lambda: list(conn.network.networks()) is not None, args.timeout)
    log(f"compute ready: {', '.join(hosts)} in az1..az{len(hosts)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=("identity", "compute"))
    parser.add_argument("--state", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--notification-url", help="transport URL of Nova's notifications, for clouds.yaml")
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--pids", help="PID directory: fail at once when a nova-compute exits")
    parser.add_argument("--nova-manage")
    parser.add_argument("--nova-conf")
    parser.add_argument("--quota-instances", type=int, default=10)
    parser.add_argument("--quota-cores", type=int, default=20)
    parser.add_argument("--quota-ram-mb", type=int, default=51200)
    parser.add_argument("--quota-ports", type=int, default=100)
    args = parser.parse_args()
    {"identity": identity, "compute": compute}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
