"""Prepare the quickstart's MEC hosts: a network to attach apps to, and the inventory file.

    python deploy/quickstart_pop.py --clouds CLOUDS_YAML --cloud NAME --out HOSTS_YAML [--testbed]

With ``--testbed`` (the local OpenStack test bed) two hosts are written, pop1 in zone az1 and pop2 in az2;
otherwise one host, pop1, on the named cloud. The network ``meao-quickstart`` (with a subnet) is created
when no network of that name (or of ``MEAO_QUICKSTART_NETWORK``) exists. Idempotent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds", required=True, type=Path)
    parser.add_argument("--cloud", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--testbed", action="store_true")
    args = parser.parse_args()
    import openstack

    try:
        region = openstack.config.OpenStackConfig(config_files=[str(args.clouds)]).get_one(cloud=args.cloud)
        conn = openstack.connection.Connection(config=region)
        name = os.environ.get("MEAO_QUICKSTART_NETWORK", "meao-quickstart")
        net = conn.network.find_network(name)
        if net is None:
            print(f"[quickstart] creating network {name} (10.66.0.0/24) at cloud {args.cloud}", file=sys.stderr)
            net = conn.network.create_network(name=name)
            conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.66.0.0/24", name=name)
    except openstack.exceptions.SDKException as exc:
        print(f"[quickstart] cannot prepare cloud {args.cloud} from {args.clouds}: {exc}\n"
              "[quickstart] check the credentials in clouds.yaml, or unset OS_CLIENT_CONFIG_FILE to use the "
              "local test bed", file=sys.stderr)
        return 1
    common = {"cloud": args.cloud, "networks": {"default": net.name},
              "services": [{"serName": "RNIS", "version": "2.2.1"}, {"serName": "LS", "version": "2.2.1"}],
              "features": [{"featureName": "UserApps", "version": "1.0"}]}
    hosts = [{"id": "pop1", "name": "Edge PoP 1", "served_areas": ["cell-1"], "latency_ms": {"cell-1": 5},
              "location": {"countryCode": "FI", "latitude": 60.17, "longitude": 24.94}, **common}]
    if args.testbed:
        hosts[0]["availability_zone"] = "az1"
        hosts.append({"id": "pop2", "name": "Edge PoP 2", "availability_zone": "az2", "served_areas": ["cell-2"],
                      "latency_ms": {"cell-2": 8}, "location": {"countryCode": "FI", "latitude": 61.5,
                                                                 "longitude": 23.76}, **common})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump({"mec_hosts": hosts}, sort_keys=False))
    print(f"[quickstart] MEC hosts {', '.join(h['id'] for h in hosts)} on cloud {args.cloud} -> {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
