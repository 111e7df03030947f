"""A client of the lab's API for the chaos tests: lanes of LCM operations, each operation started and polled
to its end, with the one retry a careful client makes and a count of every retry.

A lane runs its operations one after the other (an instance takes one operation at a time); lanes run
side by side. What a client may retry, once per request:
- a connection that failed (refused, reset, closed without an answer): the request may or may not have
  reached the API;
- 502, 503 or 504 from the load balancer: it lost the server that had the request (a POST it may not send
  again itself, see deploy/lab/up.sh's HAProxy).
A POST retried after such a failure that meets 409 had been done the first time: the operation the first
attempt started is found among the instance's operations. Any other answer ends the operation as an
error: nothing is retried twice.

Run in a namespace (``ip netns exec mlab-oss python -m tests.lab.burst < plan.json``) it prints one JSON
line per event, so a test can act (kill a server) in the middle of the burst; ``run_lanes`` is the same in
process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

FINAL = ("COMPLETED", "FAILED", "FAILED_TEMP", "ROLLED_BACK")
RETRIABLE_STATUS = (502, 503, 504)


@dataclass
class Step:
    """One operation of a lane: POST ``path`` with ``body`` on ``instance``."""

    instance: str
    path: str
    body: dict[str, Any]


@dataclass
class Outcome:
    lane: int
    index: int
    instance: str
    op: str | None = None
    state: str | None = None
    error: str | None = None
    retries: list[str] = field(default_factory=list)  # what each retried attempt met
    at: float = 0.0  # time.time() when the operation ended


class Client:
    """One token, one keep-alive connection pool, and the retry rule above."""

    def __init__(self, api: str, client_id: str, client_secret: str, timeout: float = 30) -> None:
        self.http = httpx.Client(base_url=api, timeout=timeout)
        resp = self.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(client_id, client_secret))
        resp.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, retries: list[str], **kw: Any) -> httpx.Response:
        """The answer to one request, sent at most twice; ``retries`` gets what a retried attempt met."""
        for attempt in (1, 2):
            try:
                resp = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise
                retries.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                continue
            if resp.status_code in RETRIABLE_STATUS and attempt == 1:
                retries.append(f"{method} {path}: {resp.status_code}")
                continue
            if resp.status_code == 409 and method == "POST" and attempt == 2:
                resp.extensions["meao_done_before"] = True
            return resp
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


def _op_started_before(client: Client, instance: str, known: set[str], retries: list[str]) -> str | None:
    """The operation of ``instance`` that a first attempt started (not one of ``known``), if any."""
    resp = client.request("GET", "/app_lcm/v1/app_lcm_op_occs", retries,
                          params={"filter": f"(eq,appInstanceId,{instance})"})
    resp.raise_for_status()
    new = [o for o in resp.json() if o["id"] not in known]
    new.sort(key=lambda o: o["startTime"])
    return new[-1]["id"] if new else None


def run_step(client: Client, lane: int, index: int, step: Step, known: set[str], poll_s: float,
             deadline_s: float) -> Outcome:
    out = Outcome(lane, index, step.instance)
    try:
        resp = client.request("POST", f"/app_lcm/v1{step.path}", out.retries, json=step.body)
        if resp.status_code == 202:
            out.op = resp.headers["Location"].rsplit("/", 1)[-1]
        elif resp.extensions.get("meao_done_before"):
            out.op = _op_started_before(client, step.instance, known, out.retries)
            if out.op is None:
                out.error = f"POST {step.path} retried: 409 but no new operation: {resp.text}"
        else:
            out.error = f"POST {step.path}: {resp.status_code} {resp.text}"
        if out.op:
            known.add(out.op)
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                occ = client.request("GET", f"/app_lcm/v1/app_lcm_op_occs/{out.op}", out.retries)
                if occ.status_code != 200:
                    out.error = f"GET op {out.op}: {occ.status_code} {occ.text}"
                    break
                out.state = occ.json()["operationState"]
                if out.state in FINAL:
                    break
                time.sleep(poll_s)
    except httpx.HTTPError as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    out.at = time.time()
    return out


def run_lanes(client: Client, lanes: list[list[Step]], on_outcome: Callable[[Outcome], None] | None = None,
              poll_s: float = 0.2, deadline_s: float = 300) -> list[Outcome]:
    """Every lane's operations, lanes side by side; a lane stops at its first operation not COMPLETED."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def lane_run(lane: int, steps: list[Step]) -> None:
        known: set[str] = set()
        for index, step in enumerate(steps):
            out = run_step(client, lane, index, step, known, poll_s, deadline_s)
            with lock:
                outcomes.append(out)
                if on_outcome:
                    on_outcome(out)
            if out.state != "COMPLETED":
                return

    threads = [threading.Thread(target=lane_run, args=(i, steps), daemon=True) for i, steps in enumerate(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def main() -> None:
    """Plan on stdin: {"api", "client_id", "client_secret", "lanes": [[{instance, path, body}]], "poll_s"}."""
    plan = json.load(sys.stdin)
    client = Client(plan["api"], plan["client_id"], plan["client_secret"])
    lanes = [[Step(**s) for s in lane] for lane in plan["lanes"]]

    def emit(out: Outcome) -> None:
        print(json.dumps(asdict(out)), flush=True)

    print(json.dumps({"started": time.time()}), flush=True)
    try:
        run_lanes(client, lanes, emit, plan.get("poll_s", 0.2), plan.get("deadline_s", 300))
    finally:
        client.close()


if __name__ == "__main__":
    main()
