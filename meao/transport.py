"""How meao reaches its shared services, Redis and PostgreSQL: TLS options and start-up checks.

A ``rediss://`` broker is always verified: left alone, kombu would connect with ``CERT_NONE`` and only
warn. Its options come from ``MEAO_BROKER_CA_FILE``/``CERTFILE``/``KEYFILE`` and are the same for Celery and
for meao's own redis-py clients. PostgreSQL's TLS is libpq's own parameters in ``MEAO_DATABASE_URL``
(``sslmode=verify-full&sslrootcert=…``), handed to psycopg untouched.

The start-up checks turn what no retry can mend (a certificate that does not verify, a wrong password, a
file that cannot be read, plain ``redis://`` to a TLS port) into one message naming the cause and the fix;
a service that is merely down is left to the usual retries.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from meao.redaction import mask_url

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from meao.config import Settings

log = logging.getLogger(__name__)

#: libpq parameters naming files; read by libpq at connect, checked by meao at start
_PG_FILE_PARAMETERS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")


class TransportError(SystemExit):
    """A shared service cannot be used as configured; the message says why and what to change.

    A SystemExit: the command stops with the message alone, without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"meao: {message}")


def _readable(path: Path | str, what: str) -> None:
    if not os.access(path, os.R_OK):
        raise TransportError(f"cannot read {what} {path}; fix the path or the file's permissions")


def redis_ssl_options(settings: Settings) -> dict[str, Any] | None:
    """The ``ssl_*`` options of redis-py and kombu for the broker; None unless it is a ``rediss://`` URL.

    The server's certificate and host name are always checked, against ``MEAO_BROKER_CA_FILE`` or else
    the system's trusted CAs. TransportError names a file that cannot be read, a client certificate
    without its key, or TLS options in the URL (one place sets them: the settings).
    """
    url = settings.broker_url
    if not url.startswith("rediss://"):
        return None
    in_url = sorted(k for k, _ in parse_qsl(urlsplit(url).query) if k.startswith("ssl"))
    if in_url:
        raise TransportError(f"MEAO_BROKER_URL carries {', '.join(in_url)}; meao takes the broker's TLS from "
                             "MEAO_BROKER_CA_FILE, MEAO_BROKER_CERTFILE and MEAO_BROKER_KEYFILE and always "
                             "verifies the server, so remove them from the URL")
    tls = settings.broker_tls
    if bool(tls.certfile) != bool(tls.keyfile):
        raise TransportError("a client certificate for the broker needs both MEAO_BROKER_CERTFILE and "
                             "MEAO_BROKER_KEYFILE; set both or neither")
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
    for path, name, what in ((tls.ca_file, "ssl_ca_certs", "the broker's CA file (MEAO_BROKER_CA_FILE)"),
                             (tls.certfile, "ssl_certfile", "the broker client certificate (MEAO_BROKER_CERTFILE)"),
                             (tls.keyfile, "ssl_keyfile", "the broker client key (MEAO_BROKER_KEYFILE)")):
        if path is not None:
            _readable(path, what)
            options[name] = str(path)
    return options


def check_broker(settings: Settings) -> None:
    """At start: PING a Redis broker; TransportError when TLS, the password or the scheme is wrong.

    A broker that refuses connections or does not answer is only logged: the worker waits for it and
    the API keeps jobs in its outbox until it is back.
    """
    url = settings.broker_url
    if not url.startswith(("redis://", "rediss://")):
        return
    import redis

    shown = mask_url(url or "memory://")
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                  **(redis_ssl_options(settings) or {}))
    try:
        for attempt in (1, 2):
            try:
                client.ping()
                return
            except redis.AuthenticationError as exc:  # also NOAUTH: a password the URL does not carry
                raise TransportError(f"the broker at {shown} refused meao's credentials ({_cause(exc)}); set "
                                     "the password (and ACL user) in MEAO_BROKER_URL, "
                                     "rediss://USER:PASSWORD@HOST:PORT/DB, to the server's") from exc
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if isinstance(exc.__cause__ or exc.__context__, ssl.SSLError):
                    raise TransportError(_tls_failure(shown, settings, exc)) from exc
                if url.startswith("redis://") and _closed_at_first_command(exc):
                    if attempt == 2:  # twice in a row: not a server going down as we came
                        raise TransportError(
                            f"the broker at {shown} closed the connection at the first command "
                            f"({_cause(exc)}): that is what a TLS port does to plain redis://; use rediss:// "
                            "with MEAO_BROKER_CA_FILE") from exc
                    time.sleep(1)
                    continue
                log.warning("the broker at %s does not answer yet (%s); jobs wait until it does", shown,
                            _cause(exc))
                return
    finally:
        client.close()


def _cause(exc: BaseException) -> str:
    """The underlying error's own words (redis-py wraps them in a bare category)."""
    inner = exc.__cause__ or exc.__context__ or exc
    return f"{type(inner).__name__}: {inner}"


def _closed_at_first_command(exc: Exception) -> bool:
    inner = exc.__cause__ or exc.__context__
    return isinstance(inner, ConnectionResetError | BrokenPipeError) or "closed by server" in str(exc).lower()


def _tls_failure(shown: str, settings: Settings, exc: Exception) -> str:
    """What a failed TLS handshake with the broker means, and what to change."""
    inner = exc.__cause__ or exc.__context__
    if isinstance(inner, ssl.SSLCertVerificationError):
        ca = settings.broker_tls.ca_file
        trusted = f"the CA in MEAO_BROKER_CA_FILE ({ca})" if ca else "the system's trusted CAs (no MEAO_BROKER_CA_FILE)"
        why = getattr(inner, "verify_message", None) or inner
        return (f"TLS verification of the broker at {shown} failed: certificate verify failed, {why} "
                f"(checked against {trusted}); set MEAO_BROKER_CA_FILE to the CA that signed the Redis server's "
                "certificate, and use a host name that certificate holds")
    return (f"the TLS handshake with the broker at {shown} failed ({_cause(exc)}); if that port serves plain "
            "Redis use redis://, else check its TLS settings (and MEAO_BROKER_CERTFILE/KEYFILE if it wants a "
            "client certificate)")


def check_database_url(url: str) -> None:
    """At start: the files a PostgreSQL URL names (``sslrootcert=…``) must be readable."""
    if not url.startswith("postgresql"):
        return
    for key, value in parse_qsl(urlsplit(url).query):
        if key in _PG_FILE_PARAMETERS and value != "system":  # sslrootcert=system: libpq's trusted CAs
            _readable(value, f"the file of {key} in MEAO_DATABASE_URL,")


def connect_database(engine: Engine) -> Connection:
    """A connection from ``engine``, or TransportError saying why the database cannot be reached."""
    from sqlalchemy.exc import OperationalError

    try:
        return engine.connect()
    except OperationalError as exc:
        raise TransportError(_database_failure(engine.url.render_as_string(hide_password=True),
                                               str(exc.orig or exc))) from exc


def _database_failure(shown: str, reason: str) -> str:
    reason = " ".join(reason.split())  # libpq's message runs over several lines
    lowered = reason.lower()
    if "certificate verify failed" in lowered:
        hint = ("TLS verification of the server's certificate failed: set sslrootcert in MEAO_DATABASE_URL to "
                "the CA that signed PostgreSQL's certificate")
    elif "does not match host name" in lowered:
        hint = ("the server's certificate does not name the host of MEAO_DATABASE_URL: use a host name (or "
                "address) the certificate holds, as sslmode=verify-full requires")
    elif "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = ("fix the user or the password of MEAO_DATABASE_URL (keep it in an environment file, or in a "
                "PGPASSFILE)")
    else:
        hint = "check that the database runs and that MEAO_DATABASE_URL is right"
    return f"cannot connect to the database at {shown}: {reason}; {hint}"
