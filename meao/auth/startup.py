"""What ``meao serve`` checks and says about access control before it listens."""

from __future__ import annotations

import ipaddress
import logging

import click

from meao.auth.clients import bootstrap_admin
from meao.config import Settings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def prepare_auth(settings: Settings, host: str, insecure_no_auth: bool) -> None:
    """Refuse an open API on a reachable address, warn loudly about an open one, bootstrap ``admin``.

    Messages go to stderr (and the log), where the operator starting the server looks.
    """
    mode = settings.auth.mode
    if mode == "none":
        if not is_loopback(host) and not insecure_no_auth:
            raise click.ClickException(
                f"MEAO_AUTH=none would let anyone who reaches {host} drive the MEAO; bind to 127.0.0.1, "
                "set MEAO_AUTH=local (the default) or jwt, or pass --insecure-no-auth if you really mean it")
        message = ("WARNING: MEAO_AUTH=none: every API is open, no token is checked; anyone who can reach "
                   f"{host} can onboard, instantiate and delete. Use it only for tests and demos.")
        log.warning(message)
        click.secho(message, err=True, fg="red", bold=True)
        return
    if mode == "local":
        made = bootstrap_admin(settings)
        if made is not None:
            click.echo(f"meao: created the OAuth 2.0 client '{made.client_id}' with every scope; its "
                       f"credentials are in {made.path} (mode 0600). The meao CLI on this machine uses them; "
                       "`meao auth client create` registers more clients.", err=True)
    if settings.auth.tenant_isolation:
        click.echo("meao: tenant isolation is on: a token with a tenant sees only its tenant's resources; one "
                   "without sees every tenant's only if it is an operator's (--operator clients, the "
                   f"{settings.auth.operator_scope!r} scope in jwt mode), else it is refused (403)", err=True)
