"""The lab's network (deploy/lab/up.sh): nothing leaves the machine, a cut PoP link fails at once as
"unreachable", and each PoP's WAN proxy delays what it relays."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.conftest import LAB, in_netns

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_net")]
NAMESPACES = ("mlab-ctl", "mlab-oss", "mlab-pop1", "mlab-pop2")

CONNECT = """
import errno, json, socket, sys
s = socket.socket()
s.settimeout(10)
try:
    s.connect((sys.argv[1] if len(sys.argv) > 1 else {host!r}, {port}))
    print(json.dumps({{"errno": 0}}))
except OSError as exc:
    print(json.dumps({{"errno": exc.errno, "text": str(exc)}}))
"""


def connect_errno(ns: str, host: str, port: int) -> int:
    proc = in_netns(ns, CONNECT.format(host=host, port=port))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["errno"]


def routes(*args: str) -> list[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout.splitlines()


def test_cut_pop_link_fails_fast_with_host_unreachable() -> None:
    subprocess.run(["ip", "link", "set", "mlab-p2", "down"], check=True)
    try:
        # the root namespace's unreachable route answers for pop2's address at once (ICMP to mlab-ctl)
        assert connect_errno("mlab-ctl", "10.213.2.2", 22) == errno.EHOSTUNREACH
        assert connect_errno("mlab-oss", "10.213.2.2", 443) == errno.EHOSTUNREACH
        # and from pop2 nothing answers either: its only link is down, it has no other way out
        assert connect_errno("mlab-pop2", "10.213.2.1", 8080) == errno.EHOSTUNREACH
    finally:
        subprocess.run(["ip", "link", "set", "mlab-p2", "up"], check=True)
    # once restored, pop2 reaches its proxy again (connect succeeds: the proxy accepts)
    assert connect_errno("mlab-pop2", "ctl.mlab", 8080) == 0


def test_nothing_leaves_the_machine() -> None:
    assert any(r.split()[:2] == ["unreachable", "10.213.0.0/16"] for r in routes("route", "show", "type",
                                                                                 "unreachable"))
    for ns in NAMESPACES:
        defaults = routes("-n", ns, "-4", "route", "show", "default")
        assert defaults and all(r.startswith("unreachable default") for r in defaults), (ns, defaults)
        assert routes("-n", ns, "-6", "route", "show", "default") == [], ns
    # an address off the lab fails in the namespace itself (its `unreachable default`)
    assert connect_errno("mlab-pop1", "192.0.2.1", 80) == errno.EHOSTUNREACH
    assert connect_errno("mlab-ctl", "192.0.2.1", 80) == errno.EHOSTUNREACH
    # a PoP has no path to the control plane but its WAN proxy: ctl's own address is not routed there
    assert connect_errno("mlab-pop1", "10.213.0.10", 6379) == errno.EHOSTUNREACH


def test_pop_forwarding_is_per_interface() -> None:
    for link in ("mlab0", "mlab-p1", "mlab-p2"):
        assert Path(f"/proc/sys/net/ipv4/conf/{link}/forwarding").read_text().strip() == "1", link


def configured_delay_ms(pop: str) -> float:
    pid = (LAB / "state" / "pid" / f"wan-{pop}.pid").read_text().strip()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return float(argv[argv.index(b"--delay-ms") + 1])


ECHO = """
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    srv.bind(("10.213.0.10", 6379))
except OSError:  # the full lab runs: its Redis answers PING itself
    print("busy", flush=True)
    raise SystemExit(0)
srv.listen()
print("ready", flush=True)
conn, _ = srv.accept()
while conn.recv(64):
    conn.sendall(b"+PONG\\r\\n")
"""

PING = """
import json, socket, ssl, sys, time
c = socket.create_connection(("ctl.mlab", 6379), timeout=10)
first = time.monotonic()  # the first bytes pay the WAN's handshake: with TLS, the ClientHello
if sys.argv[1:]:  # the full lab's Redis speaks TLS and wants a password: NOAUTH is an answer all the same
    c = ssl.create_default_context(cafile=sys.argv[1]).wrap_socket(c, server_hostname="ctl.mlab")
times = []
for i in range(3):
    t = first if i == 0 else time.monotonic()
    c.sendall(b"PING\\r\\n")
    assert c.recv(64).startswith((b"+PONG", b"-NOAUTH")), "Redis answers PING"
    times.append(time.monotonic() - t)
print(json.dumps(times))
"""


def test_wan_proxy_delays_each_round_trip() -> None:
    delay = configured_delay_ms("pop1") / 1000
    echo = subprocess.Popen(["ip", "netns", "exec", "mlab-ctl", "python3", "-c", ECHO], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert echo.stdout is not None
        ready = echo.stdout.readline().strip()
        assert ready in ("ready", "busy")
        tls = [str(LAB / "state" / "tls" / "ca.crt")] if ready == "busy" else []
        proc = subprocess.run(["ip", "netns", "exec", "mlab-pop1", sys.executable, "-c", PING, *tls],
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        times = json.loads(proc.stdout)
    finally:
        echo.kill()
        echo.wait()
    # a lower bound only: each round trip crosses the proxy twice; the first also pays the handshake
    assert times[0] >= 4 * delay, times
    assert all(t >= 2 * delay for t in times[1:]), times
