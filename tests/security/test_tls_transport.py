"""Issue 16 item 8: workers and API reach Redis and PostgreSQL over verified TLS, with passwords.

A throwaway CA signs a certificate for localhost/127.0.0.1; a private ``redis-server`` serves only TLS
(client certificates required, ``requirepass``) and a private PostgreSQL cluster accepts only ``hostssl``
with scram-sha-256 passwords. ``meao db upgrade``, ``meao serve`` and a separate ``meao worker`` run
against both (``rediss://`` with MEAO_BROKER_CA_FILE, ``sslmode=verify-full``) and onboard a package
through the worker; a wrong CA, plain ``redis://`` to the TLS port and a wrong password stop meao with one
message naming the cause.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import sha256
from tests.conftest import IN_CI, free_port, meao_free_environ, wait_for

_REDIS_PASSWORD = secrets.token_hex(12)
_PG_PASSWORD = secrets.token_hex(12)


def _unavailable(msg: str) -> None:
    """Under CI a service this module cannot start fails the run; elsewhere the test is skipped."""
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


# ------------------------------------------------------------------------------------------ the test PKI
@dataclass(frozen=True)
class Pki:
    ca: Path  # signed the servers' and the client's certificates
    other_ca: Path  # signed nothing meao meets: the wrong CA
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_pki(folder: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        return path

    def save_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cert, key

    def issue(cn: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName] | None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    ca_cert, ca_key = make_ca("meao test CA")
    other_cert, _ = make_ca("some other CA")
    server_cert, server_key = issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH,
                                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_cert, client_key = issue("meao", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    return Pki(ca=save_cert(ca_cert, folder / "ca.pem"), other_ca=save_cert(other_cert, folder / "other-ca.pem"),
               server_cert=save_cert(server_cert, folder / "server.pem"),
               server_key=save_key(server_key, folder / "server.key"),
               client_cert=save_cert(client_cert, folder / "client.pem"),
               client_key=save_key(client_key, folder / "client.key"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _write_pki(tmp_path_factory.mktemp("tls-pki"))


# ------------------------------------------------------------------------------------ a TLS-only Redis
@dataclass(frozen=True)
class TlsRedis:
    port: int
    password: str  # of the default user (requirepass) and of the ACL user ``meao``


@pytest.fixture(scope="module")
def tls_redis(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    """``redis-server`` on a TLS port only, client certificates required, passwords on the default user
    (``requirepass``) and on an ACL user ``meao``."""
    import redis

    server = shutil.which("redis-server")
    if server is None:
        _unavailable("redis-server is not installed; `bash tests/run.sh` installs it")
    folder = tmp_path_factory.mktemp("tls-redis")
    port = free_port()
    # the password goes in through a config file, never the command line (ps would show it)
    conf = folder / "redis.conf"
    conf.write_text(f"requirepass {_REDIS_PASSWORD}\nuser meao on >{_REDIS_PASSWORD} ~* &* +@all\n")
    conf.chmod(0o600)
    log = (folder / "redis.log").open("ab")
    proc = subprocess.Popen([server, str(conf), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
                             "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = redis.Redis(host="localhost", port=port, password=_REDIS_PASSWORD, ssl=True, ssl_ca_certs=str(pki.ca),
                         ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key),
                         socket_connect_timeout=2, socket_timeout=2)

    def up() -> bool:
        if proc.poll() is not None:
            _unavailable(f"redis-server with TLS did not start (does this build support TLS?):\n"
                         f"{(folder / 'redis.log').read_text()[-2000:]}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for(up, 30, 0.1, "the TLS Redis to answer")
        yield TlsRedis(port=port, password=_REDIS_PASSWORD)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------------------- a TLS-only PostgreSQL
@dataclass(frozen=True)
class TlsPostgres:
    port: int
    user: str
    password: str
    database: str


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the ``postgres`` system user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def tls_postgres(pki: Pki) -> Iterator[TlsPostgres]:
    """A private cluster: ``hostssl`` only, scram-sha-256 passwords, the test CA's server certificate."""
    import psycopg

    bindir = _pg_bin()
    if bindir is None:
        _unavailable("PostgreSQL's initdb is not installed; `bash tests/run.sh` installs it")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root, but there is no postgres user to own the test cluster (initdb "
                         "refuses root); install PostgreSQL with `bash tests/run.sh`")
    # not under pytest's tmp: that is private to this user, and the cluster's owner must reach it
    folder = Path(tempfile.mkdtemp(prefix="meao-tls-pg-"))
    data = folder / "data"
    superpass = folder / "superuser-password"
    superpass.write_text(_PG_PASSWORD + "\n")
    for src, dst in ((pki.server_cert, "server.pem"), (pki.server_key, "server.key")):
        shutil.copy(src, folder / dst)
    (folder / "server.key").chmod(0o600)
    if owner is not None:
        for path in (folder, superpass, folder / "server.pem", folder / "server.key"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    started = False
    try:
        init = subprocess.run(_as_cluster_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                                 "--auth-local=trust", "--auth-host=scram-sha-256",
                                                 f"--pwfile={superpass}", "-E", "UTF8", "--no-sync"]),
                              check=False, capture_output=True, text=True)
        if init.returncode != 0:
            _unavailable(f"initdb failed: {init.stderr[-2000:]}")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{folder}'\n"
                       f"ssl = on\nssl_cert_file = '{folder / 'server.pem'}'\n"
                       f"ssl_key_file = '{folder / 'server.key'}'\nfsync = off\n")
        # TLS or nothing from the network; trust only on the cluster's own socket directory
        (data / "pg_hba.conf").write_text("local all all trust\n"
                                          "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                                          "hostssl all all ::1/128 scram-sha-256\n")
        start = subprocess.run(_as_cluster_owner([str(bindir / "pg_ctl"), "-D", str(data), "-l",
                                                  str(folder / "server.log"), "-w", "-t", "60", "start"]),
                               check=False, capture_output=True, text=True)
        started = start.returncode == 0
        if not started:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            _unavailable(f"the TLS PostgreSQL did not start: {start.stderr[-1000:]}\n{log[-2000:]}")
        admin = (f"host=localhost port={port} user=postgres password={_PG_PASSWORD} dbname=postgres "
                 f"sslmode=verify-full sslrootcert={pki.ca}")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE meao LOGIN PASSWORD '{_PG_PASSWORD}'")
            conn.execute("CREATE DATABASE meao OWNER meao")
        yield TlsPostgres(port=port, user="meao", password=_PG_PASSWORD, database="meao")
    finally:
        if started:
            subprocess.run(_as_cluster_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                              "stop"]), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- meao
def _meao_env(pki: Pki, redis_: TlsRedis, pg: TlsPostgres, folder: Path, redis_user: str = "",
              **override: str) -> dict[str, str]:
    pkg_root = folder / "pkgsrc"
    pkg_root.mkdir(exist_ok=True)
    return {**meao_free_environ(), "PYTHONUNBUFFERED": "1", "MEAO_AUTH": "none", "MEAO_LOG_LEVEL": "INFO",
            "MEAO_DATA_DIR": str(folder / "data"), "MEAO_PKG_FILE_ROOT": str(pkg_root),
            "MEAO_DATABASE_URL": (f"postgresql+psycopg://{pg.user}:{pg.password}@localhost:{pg.port}/{pg.database}"
                                  f"?sslmode=verify-full&sslrootcert={pki.ca}"),
            "MEAO_BROKER_URL": f"rediss://{redis_user}:{redis_.password}@localhost:{redis_.port}/0",
            "MEAO_BROKER_CA_FILE": str(pki.ca), "MEAO_BROKER_CERTFILE": str(pki.client_cert),
            "MEAO_BROKER_KEYFILE": str(pki.client_key), **override}


def _meao(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meao.cli", *args], env=env, check=False, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "meao.cli", *args], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_api_and_worker_onboard_a_package_over_verified_tls_to_redis_and_postgresql(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path, redis_user="meao")  # an ACL user, not the default
    upgraded = _meao(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert tls_postgres.password not in upgraded.stdout + upgraded.stderr, "the password must not be shown"
    port = free_port()
    base = f"http://127.0.0.1:{port}/app_pkgm/v1"
    api = _start(env, tmp_path / "api.log", "serve", "--port", str(port), "--no-embedded-worker")
    worker = _start(env, tmp_path / "worker.log", "worker", "-c", "1")
    try:
        def api_up() -> bool:
            if api.poll() is not None:
                pytest.fail(f"meao serve exited:\n{(tmp_path / 'api.log').read_text()[-3000:]}")
            try:
                return httpx.get(f"{base}/app_packages", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(api_up, 60, 0.2, "meao serve on TLS Redis and TLS PostgreSQL")
        pkg = build_package("mec-minimal", Path(env["MEAO_PKG_FILE_ROOT"]))
        created = httpx.post(f"{base}/app_packages", json={
            "appPkgName": "tls", "appPkgVersion": "1", "appPkgPath": pkg.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": sha256(pkg)}}, timeout=10)
        assert created.status_code == 201, created.text

        def onboarded() -> dict | None:
            if worker.poll() is not None:
                pytest.fail(f"meao worker exited:\n{(tmp_path / 'worker.log').read_text()[-3000:]}")
            info = httpx.get(f"{base}/app_packages/{created.json()['id']}", timeout=5).json()
            return info if info["onboardingState"] == "ONBOARDED" else None

        info = wait_for(onboarded, 60, 0.2, "the worker to onboard the package over TLS")
        assert info["operationalState"] == "ENABLED"
        # the API's own redis-py client (queue depths) and Celery's remote control (workers) use TLS too
        ops = f"http://127.0.0.1:{port}/ops/v1"
        queues = httpx.get(f"{ops}/queues", timeout=10)
        assert queues.status_code == 200, queues.text
        assert {q["name"]: q["depth"] for q in queues.json()}.get("meao.catalogue") == 0, queues.json()
        wait_for(lambda: httpx.get(f"{ops}/workers", timeout=10).json(), 30, 0.5, "the worker to be listed")
    finally:
        _stop(api, worker)
    worker_log = (tmp_path / "worker.log").read_text()
    assert "ready" in worker_log, worker_log[-3000:]
    logs = (tmp_path / "api.log").read_text() + worker_log
    assert tls_redis.password not in logs and tls_postgres.password not in logs, "a password reached a log"


def test_a_wrong_ca_for_postgresql_stops_meao_naming_the_tls_verification(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    env["MEAO_DATABASE_URL"] = env["MEAO_DATABASE_URL"].replace(str(pki.ca), str(pki.other_ca))
    result = _meao(env, "db", "upgrade")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "certificate verify failed" in result.stderr and "sslrootcert" in result.stderr, result.stderr
    assert tls_postgres.password not in result.stderr


def test_an_unreadable_postgresql_ca_file_is_named_at_start(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    missing = tmp_path / "no-such-ca.pem"
    env["MEAO_DATABASE_URL"] = env["MEAO_DATABASE_URL"].replace(str(pki.ca), str(missing))
    result = _meao(env, "db", "upgrade")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert str(missing) in result.stderr and "sslrootcert" in result.stderr, result.stderr


def test_a_wrong_postgresql_password_stops_meao_with_one_message(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    env["MEAO_DATABASE_URL"] = env["MEAO_DATABASE_URL"].replace(f":{tls_postgres.password}@", ":wrong@")
    result = _meao(env, "db", "upgrade")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "password authentication failed" in result.stderr and "password" in result.stderr.split(";")[-1]


@pytest.mark.parametrize("command", [["worker", "-c", "1"], ["serve", "--no-embedded-worker"]])
def test_a_wrong_ca_for_redis_stops_meao_naming_the_tls_verification(
        command: list[str], pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path, MEAO_BROKER_CA_FILE=str(pki.other_ca))
    args = [*command, "--port", str(free_port())] if command[0] == "serve" else command
    result = _meao(env, *args)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "TLS verification of the broker" in result.stderr, result.stderr
    assert "certificate verify failed" in result.stderr and "MEAO_BROKER_CA_FILE" in result.stderr
    assert tls_redis.password not in result.stderr


def test_plain_redis_url_to_the_tls_port_stops_the_worker_with_a_hint(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    env["MEAO_BROKER_URL"] = env["MEAO_BROKER_URL"].replace("rediss://", "redis://")
    result = _meao(env, "worker", "-c", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "use rediss://" in result.stderr, result.stderr


def test_a_wrong_redis_password_stops_the_worker_with_one_message(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    env["MEAO_BROKER_URL"] = env["MEAO_BROKER_URL"].replace(f":{tls_redis.password}@", ":wrong@")
    result = _meao(env, "worker", "-c", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "refused meao's credentials" in result.stderr, result.stderr


def test_tls_options_in_the_broker_url_are_refused_for_the_one_setting(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    env["MEAO_BROKER_URL"] += "?ssl_cert_reqs=none"
    result = _meao(env, "worker", "-c", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "ssl_cert_reqs" in result.stderr and "MEAO_BROKER_CA_FILE" in result.stderr, result.stderr


def test_without_the_client_certificate_redis_wants_the_worker_stops_naming_it(
        pki: Pki, tls_redis: TlsRedis, tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    env = _meao_env(pki, tls_redis, tls_postgres, tmp_path)
    del env["MEAO_BROKER_CERTFILE"], env["MEAO_BROKER_KEYFILE"]
    result = _meao(env, "worker", "-c", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "TLS handshake with the broker" in result.stderr and "MEAO_BROKER_CERTFILE" in result.stderr, \
        result.stderr
