"""Measure the MEP's DNS: answer latency of PowerDNS for a published rule, and the cost of publishing.

Usage: .venv/bin/python bench/mep_dns.py [--queries 1000] [--publishes 100] [--state-dir DIR]
Needs the PowerDNS of ``bash deploy/pdns.sh`` (its state dir is asked from the script unless given).
Prints p50/p99/max of: sequential UDP A queries for one published name (dnspython ``dns.query.udp``),
queries for distinct names that have no rule (NXDOMAIN, never cached), ``PowerDns.publish`` calls, and
the time from a publish returning to the first query that sees the new address. Measures, asserts
nothing: on a shared machine p99 is mostly host noise.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from mecpm.mep.dns import PowerDns, read_env_file

ROOT = Path(__file__).resolve().parents[1]


def percentiles(label: str, samples_s: list[float]) -> None:
    ms = sorted(s * 1e3 for s in samples_s)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)) - 1)]
    print(f"{label:<46} n={len(ms):<5} p50 {statistics.median(ms):7.3f} ms   p99 {p99:7.3f} ms   "
          f"max {ms[-1]:7.3f} ms")


def timed(call: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--publishes", type=int, default=100)
    parser.add_argument("--state-dir", type=Path, help="deploy/pdns.sh's state dir [asked from the script]")
    args = parser.parse_args()
    state_dir = args.state_dir or Path(subprocess.run(
        ["bash", str(ROOT / "deploy" / "pdns.sh"), "env"], capture_output=True, text=True, check=True,
    ).stdout.strip()).parent
    host, _, port = read_env_file(state_dir / "mep-dns.env")["MEAO_MEP_DNS_ADDRESS"].rpartition(":")
    name = f"bench-{uuid.uuid4().hex[:10]}.mep-test.example.net"

    def ask(qname: str) -> dns.message.Message:
        return dns.query.udp(dns.message.make_query(qname, "A"), host, port=int(port), timeout=2)

    with PowerDns.from_state_dir(state_dir) as pdns:
        print(f"PowerDNS {pdns.ping()} at {pdns.api_url}, DNS {host}:{port}, name {name}")
        try:
            pdns.publish(name, [("A", "10.30.0.1", 30)])
            assert ask(name).answer, "the published name does not answer"
            timed(lambda: ask(name), 50)  # warm the packet cache
            percentiles("DNS A, published name (cached)", timed(lambda: ask(name), args.queries))
            missing = iter(f"none-{i}-{name}" for i in range(args.queries))
            percentiles("DNS A, distinct names without rule (NXDOMAIN)",
                        timed(lambda: ask(next(missing)), args.queries))

            counter = iter(range(args.publishes))
            percentiles("PowerDns.publish (zone exists, PATCH)",
                        timed(lambda: pdns.publish(name, [("A", f"10.30.1.{next(counter) % 250}", 30)]),
                              args.publishes))
            visible = []
            for i in range(min(args.publishes, 100)):
                address = f"10.31.0.{i % 250 + 1}"
                pdns.publish(name, [("A", address, 30)])
                t0 = time.perf_counter()
                while {r.to_text() for rrset in ask(name).answer for r in rrset} != {address}:
                    pass
                visible.append(time.perf_counter() - t0)
            percentiles("publish returned -> first query sees it", visible)

            fresh = iter(f"new{i}-{name}" for i in range(args.publishes))
            created: list[str] = []

            def create() -> None:
                created.append(next(fresh))
                pdns.publish(created[-1], [("A", "10.32.0.1", 30)])

            percentiles("PowerDns.publish (new zone, POST)", timed(create, args.publishes))
            gone = iter(created)
            percentiles("PowerDns.publish([]) (delete zone)",
                        timed(lambda: pdns.publish(next(gone), []), len(created)))
            assert dns.rcode.to_text(ask(created[0]).rcode()) == "NXDOMAIN"
        finally:
            pdns.publish(name, [])


if __name__ == "__main__":
    main()
