"""Least privilege between the lab's sites (issue 18), on the lab's own PostgreSQL and Redis.

``deploy/lab/services.sh start --listen 127.0.0.1`` runs them in the root namespace on ports of these tests
(no network namespace needed), with the lab's CA, passwords, ACL users and grants; everything goes through
TLS. The cases prove that pop1's credentials cannot reach pop2's queue nor the schema, that plain TCP and
wrong passwords are refused, and that the narrow rights are enough: a real ``meao worker -Q mecpm.pop1``
with pop1's environment file runs an instantiate, operate (stop, start) and terminate on the test bed's az1,
writing the notifications of subscribers, and answers the control plane's drain and resume.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml

from tests.conftest import meao_free_environ, wait_for
from tests.lab.conftest import onboard
from tests.lcm.conftest import hosts_doc, networks, os_conn  # noqa: F401 — the test bed's networks and client

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "deploy" / "lab" / "services.sh"
REDIS_PORT, PG_PORT, API_PORT = 16443, 16444, 16480
API = f"http://127.0.0.1:{API_PORT}"
MEAO = Path(sys.executable).with_name("meao")


@dataclass
class Lab:
    """The started services: their state directory and the env files services.sh wrote."""

    state: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def env(self, site: str) -> dict[str, str]:
        """An env file (KEY="VALUE" lines) as a dict."""
        pairs = (line.split("=", 1) for line in (self.state / "env" / f"{site}.env").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
        return {key: value.strip('"') for key, value in pairs}

    def secret(self, name: str) -> str:
        return (self.state / "secrets" / f"{name}.pw").read_text().strip()

    @property
    def ca(self) -> str:
        return str(self.state / "tls" / "ca.crt")

    def redis_as(self, user: str, password: str | None = None, **kw: Any) -> redis.Redis:
        """A TLS client of the lab's Redis as ``user`` (its own password unless one is given)."""
        pw = password if password is not None else self.secret(f"redis-{user}")
        return redis.Redis(host="127.0.0.1", port=REDIS_PORT, username=user, password=pw, ssl=True,
                           ssl_ca_certs=self.ca, ssl_check_hostname=True, socket_timeout=5, **kw)

    def pg_as(self, role: str, password: str, sslmode: str = "verify-full") -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=PG_PORT, dbname="meao", user=role, password=password,
                               sslmode=sslmode, sslrootcert=self.ca, connect_timeout=5)

    def acl_denials(self) -> list[str]:
        """What Redis refused since the last reset (ACL LOG, read as the lab's admin)."""
        entries = self.redis_as("admin").acl_log()
        return [f"{e['username']}: {e['reason']} {e['object']} ({e['context']})" for e in entries]

    def pg_log_size(self) -> int:
        return (self.state / "pg" / "log").stat().st_size

    def pg_denials(self, since: int = 0) -> list[str]:
        """What PostgreSQL refused (its log from byte ``since``)."""
        with (self.state / "pg" / "log").open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if "permission denied" in line or "must be owner" in line]

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with (self.state / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([str(MEAO), *argv], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def log_tail(self, name: str) -> str:
        return (self.state / f"{name}.log").read_text(errors="replace")[-3000:]


def _services(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SERVICES), command, "--listen", "127.0.0.1"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def lab(clouds_yaml: Path) -> Iterator[Lab]:
    """The lab's PostgreSQL and Redis on 127.0.0.1, in a state directory of this module's own."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests run as root: services.sh starts PostgreSQL as user postgres and Redis as redis")
    state = Path(tempfile.mkdtemp(prefix="meao-lab-priv-", dir="/var/tmp"))  # postgres must traverse its parents
    env = {**os.environ, "MEAO_LAB_STATE": str(state), "MEAO_LAB_PG_PORT": str(PG_PORT),
           "MEAO_LAB_REDIS_PORT": str(REDIS_PORT), "MEAO_LAB_CTL_HOST": "127.0.0.1", "MEAO_LAB_PUBLIC_URL": API,
           "MEAO_LAB_MEAO": str(MEAO), "MEAO_LAB_TESTBED_CLOUDS": str(clouds_yaml)}
    started = _services("start", env)
    lab = Lab(state)
    try:
        assert started.returncode == 0, f"services.sh start failed:\n{started.stdout}\n{started.stderr}"
        again = _services("start", env)  # idempotent: a second start changes nothing and succeeds
        assert again.returncode == 0, f"a second services.sh start failed:\n{again.stderr}"
        yield lab
    finally:
        for proc in lab.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in lab.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        _services("stop", env)
        shutil.rmtree(state, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- Redis
def _refused(call: Callable[[], Any]) -> str:
    """The error Redis answers ``call`` with; fails when it answers anything else."""
    try:
        answer = call()
    except redis.exceptions.NoPermissionError as exc:
        return str(exc)
    except redis.exceptions.ResponseError as exc:  # inside a script: the script's error names the ACL
        assert "the user executing the script can't" in str(exc).lower(), exc
        return str(exc)
    pytest.fail(f"Redis answered {answer!r} instead of refusing")


def test_pop1_can_neither_read_nor_purge_pop2s_queue(lab: Lab) -> None:
    ctl, pop1 = lab.redis_as("ctl"), lab.redis_as("pop1")
    ctl.lpush("mecpm.pop2", "a job of pop2")
    ctl.hset("unacked.mecpm.pop2", "tag", "a job pop2 holds")
    try:
        assert pop1.llen("mecpm.pop1") >= 0, "pop1 reads its own queue"  # the rights are not simply none
        for what, call in {
            "LLEN": lambda: pop1.llen("mecpm.pop2"),
            "LRANGE": lambda: pop1.lrange("mecpm.pop2", 0, -1),
            "LINDEX": lambda: pop1.lindex("mecpm.pop2", -1),
            "RPOP": lambda: pop1.rpop("mecpm.pop2"),
            "BRPOP": lambda: pop1.brpop(["mecpm.pop2"], timeout=1),
            "LPUSH": lambda: pop1.lpush("mecpm.pop2", "forged"),
            "DEL (purge)": lambda: pop1.delete("mecpm.pop2"),
            "DEL of a priority list": lambda: pop1.delete("mecpm.pop2\x06\x163"),
            "HGETALL of pop2's unacked": lambda: pop1.hgetall("unacked.mecpm.pop2"),
            "HGETALL of the shared unacked": lambda: pop1.hgetall("unacked"),
            "KEYS": lambda: pop1.keys("*"),
            "SCAN": lambda: pop1.scan(0),
            "FLUSHDB": lambda: pop1.flushdb(),
            "a script": lambda: pop1.eval("return redis.call('LRANGE', KEYS[1], 0, -1)", 1, "mecpm.pop2"),
            "a script naming no key": lambda: pop1.eval("return redis.call('DEL', 'mecpm.pop2')", 0),
            "CONFIG": lambda: pop1.config_get("*"),
        }.items():
            assert _refused(call), what
        assert ctl.lrange("mecpm.pop2", 0, -1) == [b"a job of pop2"], "pop2's queue is untouched"
        assert ctl.hgetall("unacked.mecpm.pop2") == {b"tag": b"a job pop2 holds"}
    finally:
        ctl.delete("mecpm.pop2", "unacked.mecpm.pop2")


def test_plain_tcp_and_wrong_passwords_are_refused(lab: Lab) -> None:
    plain = redis.Redis(host="127.0.0.1", port=REDIS_PORT, username="pop1", password=lab.secret("redis-pop1"),
                        socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        lab.redis_as("pop1", password="wrong").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        lab.redis_as("pop2", password=lab.secret("redis-pop1")).ping()  # pop1's password is not pop2's
    with pytest.raises(redis.exceptions.AuthenticationError):  # no user: the default user is off
        redis.Redis(host="127.0.0.1", port=REDIS_PORT, ssl=True, ssl_ca_certs=lab.ca, socket_timeout=5).ping()
    assert lab.redis_as("pop1").ping()

    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        lab.pg_as("mepm_pop1", lab.secret("pg-pop1"), sslmode="disable")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        lab.pg_as("mepm_pop1", "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        lab.pg_as("meao_owner", lab.secret("pg-pop1"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed|no pg_hba.conf entry"):
        lab.pg_as("postgres", "a guess")  # the superuser has no password: only over the cluster's socket
    with lab.pg_as("mepm_pop1", lab.secret("pg-pop1")) as conn:
        assert conn.info.pgconn.ssl_in_use


# -------------------------------------------------------------------------------------------- PostgreSQL
DENIED = {
    "CREATE TABLE": "CREATE TABLE evil (x int)",
    "CREATE TEMP TABLE": "CREATE TEMP TABLE evil (x int)",
    "CREATE SCHEMA": "CREATE SCHEMA evil",
    "CREATE INDEX": "CREATE INDEX evil ON app_instance (id)",
    "ALTER TABLE": "ALTER TABLE app_instance ADD COLUMN evil int",
    "DROP TABLE": "DROP TABLE app_package",
    "TRUNCATE": "TRUNCATE app_lcm_op_occ",
    "CREATE FUNCTION": "CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "take a table": "ALTER TABLE app_instance OWNER TO mepm_pop1",
    "read OAuth2 clients": "SELECT * FROM auth_client",
    "read grants": "SELECT * FROM grant",
    "read the MEP's apps": "SELECT * FROM mep_app",
    "read notification circuits": "SELECT * FROM notify_circuit",
    "read the notifications": "SELECT * FROM outbox",
    "delete notifications": "DELETE FROM outbox",
    "delete instances": "DELETE FROM app_instance",
    "change a package": "UPDATE app_package SET operational_state = 'DISABLED'",
    "add a host": "INSERT INTO mec_host (id) VALUES ('evil')",
    "add a job": "INSERT INTO job (task, args, queue) VALUES ('x', '[]', 'mecpm.pop2')",
    "delete jobs": "DELETE FROM job",
    "write the schema version": "UPDATE alembic_version SET version_num = 'x'",
}


def test_pop1s_role_has_no_ddl_and_only_the_tables_its_worker_needs(lab: Lab) -> None:
    with lab.pg_as("mepm_pop1", lab.secret("pg-pop1")) as conn:
        conn.autocommit = True
        assert conn.execute("SELECT count(*) FROM app_lcm_op_occ").fetchone() is not None  # what it needs works
        refused = {}
        for what, sql in DENIED.items():
            try:
                conn.execute(sql.replace(" grant", ' "grant"'))
            except psycopg.errors.InsufficientPrivilege as exc:
                refused[what] = str(exc)
            else:
                pytest.fail(f"mepm_pop1 may {what}: {sql}")
        assert all("permission denied" in why or "must be owner" in why for why in refused.values()), refused


# ------------------------------------------------------------------------- the worker with narrow rights
@dataclass
class ControlPlane:
    """``meao serve`` and the catalogue worker, with ctl's credentials; an operator's token."""

    token: str
    data_dir: Path
    pkg_root: Path

    def client(self, prefix: str) -> httpx.Client:
        return httpx.Client(base_url=f"{API}{prefix}", timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture(scope="module")
def control_plane(lab: Lab, clouds_yaml: Path, networks: dict[str, str]) -> ControlPlane:  # noqa: F811
    base = lab.state / "ctl-run"
    (base / "pkgs").mkdir(parents=True)
    hosts = base / "hosts.yaml"
    hosts.write_text(yaml.safe_dump(hosts_doc(networks)))
    env = {**meao_free_environ(), **lab.env("ctl"), "MEAO_DATA_DIR": str(base / "data"),
           "MEAO_PKG_FILE_ROOT": str(base / "pkgs"), "MEAO_MEC_HOSTS_FILE": str(hosts),
           "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "PYTHONUNBUFFERED": "1", "MEAO_LOG_LEVEL": "INFO",
           "MEAO_OUTBOUND_ALLOW_NOTIFY": "127.0.0.1/32"}  # the subscriptions' callback (nobody listens)
    made = subprocess.run([str(MEAO), "auth", "client", "create", f"lab-admin-{uuid.uuid4().hex[:6]}",
                           "--all-scopes", "--operator", "-f", "json"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    admin = json.loads(made.stdout)
    serve = lab.spawn("serve", ["serve", "--port", str(API_PORT), "--no-embedded-worker"], env)
    lab.spawn("ctl-worker", ["worker", "-Q", "meao.catalogue", "-n", "ctl-catalogue@lab"], env)

    def token() -> str | None:
        assert serve.poll() is None, lab.log_tail("serve")
        try:
            resp = httpx.post(f"{API}/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(admin["client_id"], admin["client_secret"]), timeout=5)
        except httpx.HTTPError:
            return None
        return resp.json()["access_token"] if resp.status_code == 200 else None

    try:
        issued = wait_for(token, 180, 0.3, "meao serve on the lab's services to issue a token")
    except BaseException:
        print(f"meao serve's log:\n{lab.log_tail('serve')}")  # shown with the failure: why it did not answer
        raise
    return ControlPlane(issued, base / "data", base / "pkgs")


def _onboard(ctl: ControlPlane, tmp: Path) -> dict[str, Any]:
    with ctl.client("") as api:
        return onboard(api, tmp, ctl.pkg_root, "lab-priv")


def _run(lab: Lab, lcm: httpx.Client, path: str, body: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    resp = lcm.post(path, json=body)
    assert resp.status_code == 202, resp.text
    op_id = resp.headers["Location"].rsplit("/", 1)[-1]

    def ended() -> dict[str, Any] | None:
        occ = lcm.get(f"/app_lcm_op_occs/{op_id}").json()
        return occ if occ["operationState"] in ("COMPLETED", "FAILED", "FAILED_TEMP") else None

    try:
        return wait_for(ended, timeout, 0.5, f"operation {op_id} to end")
    except BaseException:  # shown with the failure: what the PoP's worker and the API said meanwhile
        print(f"pop1's worker:\n{lab.log_tail('pop1-worker')}\nmeao serve:\n{lab.log_tail('serve')}")
        raise


CALLBACK = "http://127.0.0.1:9/lab-priv"


def _notified(lab: Lab, op_id: str, state: str) -> int:
    """How many notifications of the occurrence reaching ``state`` the outbox holds (read as the owner)."""
    with lab.pg_as("meao_owner", lab.secret("pg-owner")) as conn:
        return conn.execute("SELECT count(*) FROM outbox WHERE payload::jsonb->>'appLcmOpOccId' = %s "
                            "AND payload::jsonb->>'operationState' = %s",
                            (op_id, state)).fetchone()[0]


@pytest.mark.timeout(900)
def test_pop1_worker_runs_an_instantiate_with_pop1s_rights(lab: Lab, control_plane: ControlPlane, os_conn,  # noqa: F811
                                                            tmp_path: Path) -> None:
    pkg = _onboard(control_plane, tmp_path)
    lab.redis_as("admin").acl_log_reset()
    pg_log_from = lab.pg_log_size()
    # pop1's env file as it is; the package's files come from the control plane's data directory (one
    # machine here), the only setting the test adds
    env = {**meao_free_environ(), **lab.env("pop1"), "MEAO_DATA_DIR": str(control_plane.data_dir),
           "PYTHONUNBUFFERED": "1", "MEAO_LOG_LEVEL": "INFO"}
    worker = lab.spawn("pop1-worker", ["worker", "-Q", "mecpm.pop1", "-c", "2", "-n", "mepm-pop1-w1@lab"], env)
    with control_plane.client("/app_lcm/v1") as lcm, control_plane.client("/ops/v1") as ops:
        wait_for(lambda: any(w["name"] == "mepm-pop1-w1@lab" for w in ops.get("/workers").json()), 60, 0.5,
                 "pop1's worker to report to the control plane")
        for kind in ("AppLcmOpOccStateChangeSubscription", "AppInstanceStateChangeSubscription"):
            sub = lcm.post("/subscriptions", json={"subscriptionType": kind, "callbackUri": CALLBACK})
            assert sub.status_code == 201, sub.text  # so pop1's worker writes notifications with its outcomes
        inst = lcm.post("/app_instances", json={"appDId": pkg["appDId"]})
        assert inst.status_code == 201, inst.text
        iid = inst.json()["id"]
        host = [{"hostName": "Edge PoP 1", "hostId": {"id": "pop1"}}]
        occ = _run(lab, lcm, f"/app_instances/{iid}/instantiate", {"selectedMECHostInfo": host})
        assert occ["operationState"] == "COMPLETED", (occ, lab.log_tail("pop1-worker"))
        assert _notified(lab, occ["id"], "COMPLETED"), "pop1's worker wrote the COMPLETED notification"
        server_id = lcm.get(f"/app_instances/{iid}").json()
        servers = [s for s in os_conn.compute.servers(details=True) if iid in (s.name or "")]
        assert servers, f"no Nova server of {iid}: {server_id}"
        assert {s.availability_zone for s in servers} == {"az1"}, "pop1 boots in az1"

        for to, extra in (("STOPPED", {"stopType": "FORCEFUL"}), ("STARTED", {})):
            occ = _run(lab, lcm, f"/app_instances/{iid}/operate", {"changeStateTo": to, **extra})
            assert occ["operationState"] == "COMPLETED", (occ, lab.log_tail("pop1-worker"))

        drained = ops.post("/workers/mepm-pop1-w1@lab/drain")
        assert drained.status_code == 200, drained.text  # the control plane's drain reaches pop1's worker
        assert ops.post("/workers/mepm-pop1-w1@lab/resume").status_code == 200

        occ = _run(lab, lcm, f"/app_instances/{iid}/terminate", {"terminationType": "FORCEFUL"})
        assert occ["operationState"] == "COMPLETED", (occ, lab.log_tail("pop1-worker"))
        assert not [s for s in os_conn.compute.servers() if iid in (s.name or "")], "terminate removed the server"
    assert worker.poll() is None, lab.log_tail("pop1-worker")
    assert lab.acl_denials() == [], "pop1's worker did something its Redis user may not"
    assert lab.pg_denials(pg_log_from) == [], "a role did something PostgreSQL refused"


def test_the_control_plane_purges_pop2s_queue_through_the_api(lab: Lab, control_plane: ControlPlane) -> None:
    ctl = lab.redis_as("ctl")
    ctl.lpush("mecpm.pop2", json.dumps([["no-such-op", "1"], {}, {}]))
    with control_plane.client("/ops/v1") as ops:
        resp = ops.post("/queues/mecpm.pop2/purge")
    assert resp.status_code == 200, resp.text
    assert ctl.llen("mecpm.pop2") == 0
