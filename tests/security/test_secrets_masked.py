"""Issue 16 item 6: passwords in URLs never reach a log line, a start-up banner or a ProblemDetails.

The full-run test starts real processes on a PostgreSQL URL and a password-protected Redis (a private
``redis-server --requirepass`` on a free port), feeds the API credentials the way clients do (an
``appPkgPath`` with userinfo and a signed query, a ``callbackUri`` with userinfo, a token endpoint with
userinfo and a client password), lets fetches and deliveries fail, then reads every line the processes
wrote (stdout and stderr of ``meao db upgrade``, ``meao serve`` and ``meao worker``), every
ProblemDetails the API returned, the onboarding failure details and the outbox's ``last_error``: none may
hold a secret. The unit tests pin the masking function and the log records.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from descriptors.examples.build import build_package
from meao.logs import TEXT_FORMAT, JsonFormatter, RedactedLogRecord
from meao.problems import PROBLEM_JSON, BadRequest, ProblemError
from meao.redaction import mask_url, redact
from tests.api.helpers import sha256
from tests.conftest import (
    POSTGRES,
    SubscriberServer,
    free_port,
    meao_free_environ,
    require_service,
    wait_for,
)
from tests.databases import pg_database

# --- the masking function --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "masked"), [
    ("postgresql+psycopg://meao:s3cret@db.example:5432/meao", "postgresql+psycopg://meao:***@db.example:5432/meao"),
    ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("rediss://default:s3cret@cache.example:6380/1", "rediss://default:***@cache.example:6380/1"),
    ("amqp://guest:s3cret@rabbit.example:5672//", "amqp://guest:***@rabbit.example:5672//"),
    ("https://user:p%40ss@repo.example/pkg.zip", "https://user:***@repo.example/pkg.zip"),
    ("http://user:s3cret@[2001:db8::1]:8080/cb", "http://user:***@[2001:db8::1]:8080/cb"),
    ("redis://:s3cret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
    ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),  # an unencoded '@': up to the last one
    ("https://bucket.example/pkg.zip?X-Amz-Date=20261207&X-Amz-Signature=abc123",
     "https://bucket.example/pkg.zip?X-Amz-Date=20261207&X-Amz-Signature=***"),
    ("https://acct.example/c/pkg.zip?sv=2024&sig=abc%2Bdef&se=2026", "https://acct.example/c/pkg.zip?sv=2024&sig=***&se=2026"),
    ("postgresql://h/db?sslmode=require&password=s3cret", "postgresql://h/db?sslmode=require&password=***"),
    ("fetching 'http://a:one@h/x' failed; broker redis://:two@h:1/0 down",
     "fetching 'http://a:***@h/x' failed; broker redis://:***@h:1/0 down"),
    ('{"callbackUri": "http://a:one@h/cb", "x": "https://b:two@[::1]/"}',
     '{"callbackUri": "http://a:***@h/cb", "x": "https://b:***@[::1]/"}'),
])
def test_url_passwords_and_credential_parameters_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked
    assert redact(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:8080/app_pkgm/v1", "http://[::1]:8080/x", "http://[fe80::1%25eth0]:80/", "file:///var/pkgs/a.zip",
    "sqlite:////var/lib/meao/meao.db", "redis://127.0.0.1:6379/0", "mail ops@example.com about it",
    "https://token-as-user@repo.example/x", "redis://:***@h:6379/0", "postgresql://meao:***@db/meao",
    "key=value pairs and ?page=2&size=10", "memory://", "",
])
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_mask_url_accepts_none() -> None:
    assert mask_url(None) == "" and mask_url("redis://:pw@h/0") == "redis://:***@h/0"


def test_problem_details_are_masked_wherever_they_are_made() -> None:
    err = BadRequest("appPkgPath 'ftp://u:s3cret@h/p.zip': only http, https and file URIs are supported")
    assert "s3cret" not in err.detail and "s3cret" not in str(err)
    assert "ftp://u:***@h/p.zip" in err.to_problem()["detail"]
    assert "s3cret" not in json.dumps(ProblemError("at http://u:s3cret@h/", status=502).to_problem())


@pytest.fixture
def masked_records() -> Iterator[None]:
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(RedactedLogRecord)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


@pytest.mark.parametrize("formatter", [logging.Formatter(TEXT_FORMAT.replace("%(op_tag)s", "")), JsonFormatter()])
def test_log_records_mask_message_arguments_tracebacks_and_stacks(masked_records: None,
                                                                  formatter: logging.Formatter) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    log = logging.getLogger(f"meao.test.redaction.{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.propagate = False
    log.warning("notification to %s failed", "http://u:arg-secret@h/cb")
    log.warning("database postgresql://u:msg-secret@db/meao", stack_info=True)
    try:
        raise RuntimeError("cannot reach redis://:exc-secret@127.0.0.1:6379/0")
    except RuntimeError:
        log.exception("broker down")
    text = out.getvalue()
    for secret in ("arg-secret", "msg-secret", "exc-secret"):
        assert secret not in text
    assert "http://u:***@h/cb" in text and "redis://:***@127.0.0.1" in text and "RuntimeError" in text


# --- a full run on real processes ------------------------------------------------------------------------

def _secret(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A private redis-server that wants a password, on a free port; stopped afterwards."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; `bash tests/run.sh` installs it")
    password, port = _secret("redis-pw"), free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        import redis

        def up() -> bool:
            assert proc.poll() is None, "redis-server exited"
            try:
                return bool(redis.Redis(host="127.0.0.1", port=port, password=password).ping())
            except redis.RedisError:
                return False

        wait_for(up, 20, 0.1, "the private redis-server")
        yield port, password
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def pg_url_with_password() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database, its URL carrying a password (trust auth here: any password works)."""
    require_service("PostgreSQL", POSTGRES)
    password = _secret("pg-pw")
    for url in pg_database("meao_secrets"):
        yield url.replace("postgres@", f"postgres:{password}@", 1), password


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once we return


class _Api:
    """An httpx client that keeps every ProblemDetails the API answers."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.problems: list[str] = []

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        resp = self.client.request(method, path, **kw)
        if resp.status_code >= 400 or resp.headers.get("content-type", "").startswith(PROBLEM_JSON):
            self.problems.append(resp.text)
        return resp


def test_no_secret_reaches_a_log_line_or_a_problem_details(
        tmp_path: Path, redis_with_password: tuple[int, str], pg_url_with_password: tuple[str, str],
        subscriber: SubscriberServer) -> None:
    db_url, pg_password = pg_url_with_password
    redis_port, redis_password = redis_with_password
    pkg_password, pkg_sig, cb_password, token_password, client_password = (
        _secret("pkg-pw"), _secret("pkg-sig"), _secret("cb-pw"), _secret("tok-pw"), _secret("client-pw"))
    secrets = [pg_password, redis_password, pkg_password, pkg_sig, cb_password, token_password, client_password]
    port = free_port()
    env = {**meao_free_environ(), "MEAO_DATABASE_URL": db_url,
           "MEAO_BROKER_URL": f"redis://:{redis_password}@127.0.0.1:{redis_port}/0",
           "MEAO_DATA_DIR": str(tmp_path / "data"), "MEAO_AUTH": "none", "MEAO_LOG_LEVEL": "INFO",
           "MEAO_PUBLIC_URL": f"http://127.0.0.1:{port}", "MEAO_NOTIFY_BACKOFF_BASE_S": "0.2",
           "MEAO_NOTIFY_MAX_ATTEMPTS": "2", "PYTHONUNBUFFERED": "1"}
    logs: dict[str, Path] = {}

    def start(name: str, *args: str) -> subprocess.Popen:
        logs[f"{name}.out"], logs[f"{name}.err"] = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        return subprocess.Popen([sys.executable, "-m", "meao.cli", *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=logs[f"{name}.out"].open("wb"), stderr=logs[f"{name}.err"].open("wb"))

    upgrade = start("db-upgrade", "db", "upgrade")
    assert upgrade.wait(120) == 0, logs["db-upgrade.err"].read_text()
    procs = [start("serve", "serve", "--port", str(port), "--no-embedded-worker"), start("worker", "worker")]
    api = _Api(f"http://127.0.0.1:{port}/app_pkgm/v1")
    try:
        def api_up() -> bool:
            assert all(p.poll() is None for p in procs), {n: p.read_text()[-2000:] for n, p in logs.items()}
            try:
                return api.client.get("/app_packages", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(api_up, 60, 0.2, "meao serve")
        details = _exercise(api, tmp_path, subscriber, pkg_password, pkg_sig, cb_password, token_password,
                            client_password)
        last_errors = _failed_deliveries(db_url, expected=2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        api.client.close()

    texts = {name: path.read_text("utf-8", errors="replace") for name, path in logs.items()}
    texts.update({f"problem {i}": p for i, p in enumerate(api.problems)})
    texts.update({f"onboarding failure {i}": d for i, d in enumerate(details)})
    texts.update({f"outbox last_error {i}": e for i, e in enumerate(last_errors)})
    leaks = [(where, line) for where, text in texts.items() for line in text.splitlines()
             if any(secret in line for secret in secrets)]
    assert not leaks, "secrets leaked:\n" + "\n".join(f"{where}: {line}" for where, line in leaks)
    # and the masked forms are there: the lines were written, with the URLs, only without passwords
    assert "postgres:***@127.0.0.1" in texts["db-upgrade.out"]
    assert "postgres:***@127.0.0.1" in texts["serve.err"] and f":***@127.0.0.1:{redis_port}/0" in texts["serve.err"]
    assert f"@127.0.0.1:{redis_port}" in texts["worker.out"] + texts["worker.err"]  # Celery's banner, masked
    assert any("pkguser:***@127.0.0.1" in d and "sig=***" in d and "HTTP 404" in d for d in details)
    assert any("pkguser:***@127.0.0.1" in d for d in details if "HTTP 404" not in d)
    assert len([p for p in api.problems if "***@127.0.0.1" in p]) == 3
    assert len(last_errors) == 2


def _exercise(api: _Api, tmp_path: Path, subscriber: SubscriberServer, pkg_password: str, pkg_sig: str,
              cb_password: str, token_password: str, client_password: str) -> list[str]:
    """What clients do with credentials in URLs; returns the onboarding failure details."""
    package = build_package("mec-minimal", tmp_path / "pkg", appd_id=str(uuid.uuid4()))
    checksum = {"algorithm": "SHA-256", "hash": sha256(package)}
    dead = _dead_port()
    host = subscriber.url.removeprefix("http://")
    # refused at once (400): an unsupported scheme, a body that fails the schema, a non-http callbackUri
    bad = api.call("POST", "/app_packages", json={"appPkgName": "x", "appPkgVersion": "1", "checksum": checksum,
                                                  "appPkgPath": f"ftp://pkguser:{pkg_password}@{host}/p.zip"})
    assert bad.status_code == 400, bad.text
    bad = api.call("POST", "/app_packages", json={"appPkgName": "x", "appPkgVersion": "1",
                                                  "checksum": f"http://pkguser:{pkg_password}@{host}/p.zip",
                                                  "appPkgPath": f"http://{host}/p.zip"})
    assert bad.status_code == 400, bad.text
    bad = api.call("POST", "/subscriptions", json={"subscriptionType": "AppPackageOnBoardingSubscription",
                                                   "callbackUri": f"ftp://cbuser:{cb_password}@{host}/cb"})
    assert bad.status_code == 400, bad.text
    # subscribers that cannot be reached: userinfo in the callbackUri, in the token endpoint
    subs = []
    for auth in (None, {"authType": ["OAUTH2_CLIENT_CREDENTIALS"], "paramsOauth2ClientCredentials": {
            "clientId": "meao", "clientPassword": client_password,
            "tokenEndpoint": f"http://tokuser:{token_password}@127.0.0.1:{dead}/token"}}):
        body = {"subscriptionType": "AppPackageOnBoardingSubscription",
                "callbackUri": f"http://cbuser:{cb_password}@127.0.0.1:{dead}/cb", **({"authentication": auth} if auth else {})}
        resp = api.call("POST", "/subscriptions", json=body)
        assert resp.status_code == 201, resp.text
        subs.append(resp.json()["id"])
    # fetches that fail: a 404 from a live server (signed query too), a refused connection
    details = []
    for path in (f"http://pkguser:{pkg_password}@{host}/pkg.zip?sv=1&sig={pkg_sig}",
                 f"http://pkguser:{pkg_password}@127.0.0.1:{dead}/pkg.zip"):
        resp = api.call("POST", "/app_packages", json={"appPkgName": "secret-test", "appPkgVersion": "1",
                                                       "checksum": checksum, "appPkgPath": path})
        assert resp.status_code == 201, resp.text
        pkg_id = resp.json()["id"]

        def failed(pkg_id: str = pkg_id) -> dict | None:
            info = api.call("GET", f"/app_packages/{pkg_id}").json()
            return info if "onboardingFailureDetails" in info else None

        details.append(json.dumps(wait_for(failed, 60, 0.2, "the fetch to fail")["onboardingFailureDetails"]))
    # the last package is uploaded instead, onboards, and its notifications fail to be delivered
    put = api.call("PUT", f"/app_packages/{pkg_id}/package_content", content=package.read_bytes(),
                   headers={"Content-Type": "application/zip"})
    assert put.status_code == 202, put.text
    wait_for(lambda: api.call("GET", f"/app_packages/{pkg_id}").json()["onboardingState"] == "ONBOARDED", 60, 0.2,
             "the uploaded package to onboard")
    return details


def _failed_deliveries(db_url: str, expected: int) -> list[str]:
    """Wait until ``expected`` notifications have given up; their ``last_error``s."""
    from meao.db.models import OutboxMessage

    engine = create_engine(db_url)
    try:
        def failed() -> list[str] | None:
            with engine.connect() as conn:
                rows = conn.execute(select(OutboxMessage.status, OutboxMessage.last_error)).all()
            done = [error or "" for status, error in rows if status == "FAILED"]
            return done if len(done) >= expected else None

        return wait_for(failed, 60, 0.2, f"{expected} notifications to fail")
    finally:
        engine.dispose()
