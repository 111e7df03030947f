"""Benchmark of MEC host selection: rank 200 seeded random hosts for one app (target < 5 ms per call).

Usage: .venv/bin/python bench/placement.py [--hosts 200] [--seed 7] [--samples 300] [--number 10]
Prints the median, p95 and best wall-clock time per ``rank_hosts`` call and whether the median meets the
target (exit 1 if not). p95 and the process's CPU time per call are shown too: on a shared machine the
wall-clock figures include waiting for a CPU, the CPU time does not.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import timeit

from meao.lcm.placement import AppRequirements, HostHeadroom, MecHostView, rank_hosts

TARGET_MS = 5.0
SERVICES = ("rnis", "locationservice", "bwmservice", "wlaninformation", "fixedaccessinformation", "uemobility")
FEATURES = ("UserApps", "UEIdentity", "VirtualNetworkFunctions", "RequestLifecycleMgmt")
NETWORKS = ("mec-data", "mec-mgmt", "ran-n6", "internet", "sgi")
COUNTRIES = ("DE", "DE", "DE", "AT", "PL")


def make_hosts(count: int, seed: int) -> list[MecHostView]:
    """``count`` hosts with seeded random capacity, areas, latencies, services, features and networks."""
    rng = random.Random(seed)
    hosts = []
    for i in range(count):
        areas = tuple(f"ta-{rng.randrange(50):03d}" for _ in range(rng.randint(1, 6)))
        services = {s: tuple(rng.sample(("1.1.1", "2.1.1", "2.2.1"), rng.randint(1, 3)))
                    for s in SERVICES if rng.random() < 0.85}
        features = {f: ("1",) for f in FEATURES if rng.random() < 0.8}
        networks = frozenset(n for n in NETWORKS if rng.random() < 0.9)
        capacity = None if rng.random() < 0.03 else HostHeadroom(
            free_vcpus=rng.randint(0, 64), free_ram_mb=rng.randint(0, 256) * 1024, free_disk_gb=rng.randint(0, 2000),
            quota_instances_left=rng.choice((None, rng.randint(0, 20))),
            quota_cores_left=rng.choice((None, rng.randint(0, 100))),
            quota_ram_mb_left=rng.choice((None, rng.randint(0, 512) * 1024)))
        hosts.append(MecHostView(
            id=f"host-{i:04d}", name=f"edge-pop-{i}", country_code=rng.choice(COUNTRIES),
            latitude=rng.uniform(46.0, 55.5), longitude=rng.uniform(5.0, 15.5), served_areas=areas,
            latency_ms={a: rng.uniform(1.0, 30.0) for a in areas}, services=services, features=features,
            networks=networks, capacity=capacity))
    return hosts


def make_app() -> AppRequirements:
    """An app with every kind of constraint, so every check does real work."""
    return AppRequirements(
        vcpus=4, memory_mb=8192, disk_gb=40, max_latency_ms=20.0, area=None,
        services_required=(("rnis", None), ("locationservice", "2.1.1")),
        services_optional=(("bwmservice", None), ("uemobility", "2.2.1")),
        features_required=(("UserApps", None),), features_optional=(("UEIdentity", "1"),),
        networks=frozenset({"mec-data", "mec-mgmt"}), country_code="DE",
        area_polygon=((5.8, 47.2), (15.0, 47.2), (15.0, 55.1), (5.8, 55.1), (5.8, 47.2)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--samples", type=int, default=300, help="timed samples")
    parser.add_argument("--number", type=int, default=10, help="calls per sample")
    args = parser.parse_args()

    hosts, app = make_hosts(args.hosts, args.seed), make_app()
    decision = rank_hosts(app, hosts)
    fitting = sum(ev.fits for ev in decision.ranking)
    timer = timeit.Timer(lambda: rank_hosts(app, hosts))
    timer.timeit(number=args.number)  # warm-up
    cpu_start = time.process_time()
    per_call = sorted(t / args.number * 1000 for t in timer.repeat(repeat=args.samples, number=args.number))
    cpu_ms = (time.process_time() - cpu_start) / (args.samples * args.number) * 1000
    median = statistics.median(per_call)
    p95 = per_call[min(len(per_call) - 1, round(0.95 * len(per_call)) - 1)]
    ok = median < TARGET_MS
    print(f"rank_hosts: {args.hosts} hosts ({fitting} fit, chosen {decision.chosen}), "
          f"{args.samples} samples x {args.number} calls")
    print(f"median {median:.3f} ms/call, p95 {p95:.3f} ms/call, best {per_call[0]:.3f} ms/call, "
          f"CPU {cpu_ms:.3f} ms/call; "
          f"target median < {TARGET_MS:g} ms: {'met' if ok else 'MISSED'}"
          f"{'' if p95 < TARGET_MS else f' (p95 above {TARGET_MS:g} ms: a busy machine?)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
