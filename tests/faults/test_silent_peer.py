"""A peer that goes silent without closing (a PoP's cut WAN link) is noticed by the connection, not waited
for: real PostgreSQL connections carry libpq's keepalive and user timeout, and the Redis broker's
transport its health check, keepalives and socket timeouts. How long a PoP takes to come back after a cut
is measured by the lab's cut test (tests/lab/test_chaos.py prints it)."""

from __future__ import annotations

import socket

from meao.celery_app import BROKER_LIVENESS, celery_app, configure_celery
from meao.config import load_settings
from meao.db.session import PG_LIVENESS, get_engine


def _parameters(url: str) -> dict[str, str]:
    engine = get_engine.__wrapped__(url)  # an engine of its own, not the process's cached one
    try:
        with engine.connect() as conn:
            return conn.connection.dbapi_connection.info.get_parameters()
    finally:
        engine.dispose()


def test_postgresql_connections_carry_tcp_liveness_unless_the_url_sets_it(pg_url: str) -> None:
    params = _parameters(pg_url)
    assert {k: params.get(k) for k in PG_LIVENESS} == {k: str(v) for k, v in PG_LIVENESS.items()}, params
    own = _parameters(f"{pg_url}?tcp_user_timeout=5000&keepalives_idle=60")
    assert (own["tcp_user_timeout"], own["keepalives_idle"], own["keepalives_count"]) == ("5000", "60", "3"), own


def test_a_redis_broker_checks_its_connections_and_memory_needs_nothing(monkeypatch) -> None:
    monkeypatch.setenv("MEAO_BROKER_URL", "rediss://127.0.0.1:1/0")
    try:
        configure_celery(load_settings())
        options = celery_app.conf.broker_transport_options
        assert {k: options.get(k) for k in BROKER_LIVENESS} == BROKER_LIVENESS
        assert options["health_check_interval"] < 25, "kombu's default 25 s kept a PoP idle ~52 s after a cut"
        assert options["socket_keepalive_options"][socket.TCP_KEEPIDLE] <= 10
        monkeypatch.setenv("MEAO_BROKER_URL", "memory://")
        configure_celery(load_settings())
        assert "health_check_interval" not in celery_app.conf.broker_transport_options
    finally:
        monkeypatch.delenv("MEAO_BROKER_URL")
        configure_celery(load_settings())
