"""The ``meao`` command: serve the API, run a worker, manage the database."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from meao.config import get_settings, log_environment
from meao.db.migrate import db_upgrade
from meao.redaction import mask_url

if TYPE_CHECKING:
    from meao.config import Settings


def _setup_logging(level: str) -> None:
    from meao.logs import setup_logging

    setup_logging(level)


@click.group()
@click.option("--log-level", default=lambda: log_environment()[0], show_default="$MEAO_LOG_LEVEL or INFO")
def main(log_level: str) -> None:
    """meao: ETSI MEC application orchestrator (MEAO) and MEC platform manager (MEPM-V)."""
    _setup_logging(log_level)


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
def db_upgrade_cmd() -> None:
    """Create or migrate the database schema to the latest version."""
    db_upgrade()
    click.echo(f"database at {mask_url(get_settings().database_url)} is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=int, help="port to listen on")
@click.option("--embedded-worker/--no-embedded-worker", default=None,
              help="run jobs in this process (default: yes when MEAO_BROKER_URL is not set)")
@click.option("--certfile", type=click.Path(dir_okay=False), help="serve HTTPS with this certificate (PEM) "
              "[default: $MEAO_TLS_CERTFILE]")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="its private key (PEM; a password comes "
              "from $MEAO_TLS_KEYFILE_PASSWORD) [default: $MEAO_TLS_KEYFILE]")
@click.option("--client-ca", type=click.Path(dir_okay=False), help="require client certificates chaining to "
              "this CA bundle (mutual TLS) [default: $MEAO_TLS_CLIENT_CA]")
@click.option("--insecure-no-auth", is_flag=True, help="allow MEAO_AUTH=none on a non-loopback address")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="processes serving the one port (use up to one per core); the embedded worker and the "
                   "background duties run once, in the parent")
def serve(host: str, port: int, embedded_worker: bool | None, certfile: str | None, keyfile: str | None,
          client_ca: str | None, insecure_no_auth: bool, workers: int) -> None:
    """Serve the Mm1 APIs (migrating the database first)."""
    from meao.serving import shared_metrics_dir

    # several processes: each one's metrics in files the one answering /ops/v1/metrics sums (set up
    # before anything here imports prometheus_client, so the parent's embedded worker counts too)
    with shared_metrics_dir() if workers > 1 else contextlib.nullcontext():
        _serve(host, port, embedded_worker, certfile, keyfile, client_ca, insecure_no_auth, workers)


def _serve(host: str, port: int, embedded_worker: bool | None, certfile: str | None, keyfile: str | None,
           client_ca: str | None, insecure_no_auth: bool, workers: int) -> None:
    import uvicorn

    from meao.api.validation import UVICORN_OPTIONS
    from meao.app import create_app
    from meao.auth.startup import prepare_auth
    from meao.config import load_settings, serve_public_url, set_settings
    from meao.tls import uvicorn_ssl_options
    from meao.transport import check_broker

    tls_given = {"MEAO_TLS_CERTFILE": certfile, "MEAO_TLS_KEYFILE": keyfile, "MEAO_TLS_CLIENT_CA": client_ca}
    ssl_options = uvicorn_ssl_options(load_settings(**tls_given).tls)
    public = serve_public_url(host, port, https=bool(ssl_options))
    settings = load_settings(MEAO_PUBLIC_URL=public, **tls_given)
    set_settings(settings)
    db_upgrade()
    prepare_auth(settings, host, insecure_no_auth)
    from meao.lcm.hosts import load_configured_hosts

    hosts = load_configured_hosts()
    embedded = embedded_worker if embedded_worker is not None else settings.embedded_broker
    if not settings.embedded_broker:
        check_broker(settings)
    mode = "embedded worker, memory broker" if embedded else mask_url(settings.broker_url)
    click.echo(f"meao serving Mm1 on {public}/app_pkgm/v1 (Swagger UI: {public}/app_pkgm/v1/ui/); "
               f"database {mask_url(settings.database_url)}; jobs: {mode}; {hosts} MEC host(s) loaded; "
               f"auth: {settings.auth.mode}; {workers} process(es)", err=True)
    if workers == 1:
        uvicorn.run(create_app(settings, embedded_worker=embedded), host=host, port=port, log_level="warning",
                    **UVICORN_OPTIONS, **ssl_options)
        return
    _serve_processes(settings, host, port, workers, embedded, ssl_options,
                     {"MEAO_PUBLIC_URL": public, **{k: v for k, v in tls_given.items() if v}})


def _serve_processes(settings: Settings, host: str, port: int, workers: int, embedded: bool,
                     ssl_options: dict[str, Any], env: dict[str, str]) -> None:
    """``meao serve --workers N``: the duties here, once; the web processes build their apps from the
    environment, and wake this process's job dispatcher instead of sending jobs themselves."""
    from meao.app import serve_duties
    from meao.celery_app import prepare_jobs
    from meao.jobs.dispatcher import wake_listener
    from meao.serving import ServeFailed, serve_processes

    prepare_jobs(settings)  # the embedded worker runs here

    with serve_duties(settings, embedded), wake_listener() as wake_address:
        os.environ.update(env, MEAO_SERVE_EMBEDDED_WORKER="true" if embedded else "false",
                          MEAO_DISPATCH_WAKE=wake_address)
        try:
            serve_processes(host, port, workers, "meao.app:app_from_environment", "meao-serve", ssl_options)
        except ServeFailed as exc:
            raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--queues", "-Q", default=None,
              help="comma-separated queues, e.g. mecpm.pop1 for a worker at that PoP "
                   "(default: the catalogue queue and every MEC host's queue)")
@click.option("--concurrency", "-c", default=2, show_default=True, type=int)
@click.option("--name", "-n", "node_name", default=None, metavar="NAME",
              help="worker name as `meao workers` shows it; %h is the host name "
                   "[default: meao-<pid>@<host>, unique per process]")
@click.option("--metrics-port", type=int, default=lambda: get_settings().worker_metrics_port,
              help="serve this worker's Prometheus metrics (job step durations, notification failures) "
                   "on this port [default: $MEAO_WORKER_METRICS_PORT, else off]")
@click.option("--metrics-host", default=lambda: get_settings().worker_metrics_host,
              show_default="127.0.0.1", help="address the metrics port listens on")
def worker(queues: str | None, concurrency: int, node_name: str | None, metrics_port: int | None,
           metrics_host: str) -> None:
    """Run a standalone Celery worker (needs MEAO_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""
    from celery.signals import worker_ready, worker_shutdown

    from meao.background import Background
    from meao.celery_app import celery_app, prepare_jobs
    from meao.db import roundtrips
    from meao.transport import check_broker

    roundtrips.enable()  # only with MEAO_COUNT_ROUND_TRIPS set (measurements)
    settings = get_settings()
    if settings.embedded_broker:
        raise click.ClickException("a standalone worker needs a shared broker: set MEAO_BROKER_URL "
                                   "(e.g. redis://127.0.0.1:6379/0); `meao serve` alone runs jobs in-process")
    prepare_jobs(settings)
    from meao.celery_app import all_queues
    from meao.lcm.hosts import load_configured_hosts

    db_upgrade()
    check_broker(settings)
    load_configured_hosts()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(int(metrics_port), addr=metrics_host)
        click.echo(f"worker metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
    if settings.worker_background:
        background = Background(settings, embedded=False)
        worker_ready.connect(lambda **_: background.start(), weak=False)
        worker_shutdown.connect(lambda **_: background.stop(), weak=False)
    else:  # a PoP's worker: its broker user may only consume its queue, the control plane sends and reaps
        click.echo("worker: no dispatcher, deliverer or reaper here (MEAO_WORKER_BACKGROUND=false); the "
                   "control plane's processes run them", err=True)
    argv = ["worker", "--loglevel", "INFO", "--pool", "threads", "--concurrency", str(concurrency),
            "--queues", queues or ",".join(all_queues(settings)), "--without-gossip", "--without-mingle",
            "--hostname", node_name or f"meao-{os.getpid()}@%h"]
    celery_app.worker_main(argv)


@main.group()
def mep() -> None:
    """The MEC platform (MEP) of a PoP: Mp1 to the apps, Mm5 to the MEPM-V."""


@mep.command("serve")
@click.option("--host-id", required=True, help="the MEC host (PoP) of the inventory whose MEP this is")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8090, show_default=True, type=int, help="port to listen on")
@click.option("--workers", default=1, show_default=True, type=int,
              help="processes serving the one port (the MEP keeps no state in memory; use up to one per core)")
@click.option("--insecure-no-auth", is_flag=True, help="allow MEAO_AUTH=none (an open Mm5) on a non-loopback address")
@click.option("--public-url", default=None, envvar="MEAO_MEP_PUBLIC_URL",
              help="the URL apps and the MEPM-V reach this MEP at (the host's mep_url) "
                   "[default: $MEAO_MEP_PUBLIC_URL, else http://HOST:PORT]")
def mep_serve(host_id: str, host: str, port: int, workers: int, insecure_no_auth: bool,
              public_url: str | None) -> None:
    """Serve one PoP's MEP: Mp1 (MEC 011) at /mec_app_support/v1 and /mec_service_mgmt/v1, Mm5 at /mm5/v1."""
    import uvicorn

    from meao.api.validation import UVICORN_OPTIONS
    from meao.config import load_settings, set_settings
    from meao.db.models import MecHost
    from meao.db.session import session_scope
    from meao.lcm.hosts import load_configured_hosts
    from mecpm.mep.web import create_mep_app

    settings = load_settings()
    set_settings(settings)
    if settings.auth.mode == "none" and host not in ("127.0.0.1", "::1", "localhost") and not insecure_no_auth:
        raise click.ClickException(f"MEAO_AUTH=none leaves Mm5 open to anyone who reaches {host}:{port}, the apps "
                                   "included (any app could take another's credentials); use MEAO_AUTH=local or "
                                   "jwt, or pass --insecure-no-auth if that is what you want")
    db_upgrade()
    load_configured_hosts()
    url = (public_url or f"http://{host}:{port}").rstrip("/")  # not MEAO_PUBLIC_URL: that is meao's
    with session_scope() as session:
        known = session.get(MecHost, host_id)
        configured = known.mep_url if known else None
    if known is None:
        raise click.ClickException(f"MEC host {host_id} is not in the inventory; add it (meao hosts, or "
                                   f"MEAO_MEC_HOSTS_FILE) with mep_url: {url}, then start its MEP again")
    if configured and configured.rstrip("/") != url:
        click.echo(f"warning: MEC host {host_id} has mep_url {configured}, but this MEP serves at {url}; the "
                   "MEPM-V and the apps use the inventory's URL", err=True)
    if not configured:
        click.echo(f"warning: MEC host {host_id} has no mep_url, so `meao serve` runs its MEP too; set "
                   f"mep_url: {url} on the host so the MEPM-V uses this one", err=True)
    dns = settings.mep.dns_api_url or "none (DNS rules stay unrealised; set MEAO_MEP_DNS_API_URL)"
    click.echo(f"MEP of MEC host {host_id} serving Mp1 on {url}/mec_app_support/v1 and "
               f"{url}/mec_service_mgmt/v1, Mm5 on {url}/mm5/v1 ({workers} process(es)); database "
               f"{mask_url(settings.database_url)}; DNS server {mask_url(dns)}", err=True)
    if workers > 1:  # each process builds its app from the environment
        from meao.serving import serve_processes

        os.environ.update(MEAO_MEP_HOST_ID=host_id, MEAO_MEP_PUBLIC_URL=url)
        serve_processes(host, port, workers, "mecpm.mep.web:app_from_environment", "mep")
    else:
        uvicorn.run(create_mep_app(settings, host_id, url), host=host, port=port, log_level="warning",
                    **UVICORN_OPTIONS)


def _register_oss_commands() -> None:
    from meao.auth.cli import register as register_auth
    from meao.oss.cli import register

    register(main)
    register_auth(main)


_register_oss_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
