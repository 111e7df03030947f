"""``meao auth client create|list|delete``: the OAuth 2.0 clients of ``MEAO_AUTH=local``, straight in the database.

These commands run where the database is reachable (like ``meao db upgrade``), not through the API: they
are how an operator gets the first credentials, and how a lost secret is replaced.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

import click
from sqlalchemy.orm import Session

from meao.auth.scopes import ALL_SCOPES, SCOPES
from meao.problems import ProblemError


def _session() -> AbstractContextManager[Session]:
    """A transaction on the configured database, migrated first (as ``meao serve`` would)."""
    from meao.db.migrate import db_upgrade
    from meao.db.session import session_scope

    db_upgrade()
    return session_scope()


@click.group()
def auth() -> None:
    """Access control: OAuth 2.0 clients of meao's token endpoint (MEAO_AUTH=local)."""


@auth.group()
def client() -> None:
    """Register, list and remove clients (they get tokens at POST /oauth2/token)."""


@client.command("create")
@click.argument("client_id")
@click.option("--scope", "scopes", multiple=True, metavar="SCOPE",
              help=f"a scope the client may have (repeatable, or space-separated): {', '.join(ALL_SCOPES)}")
@click.option("--all-scopes", is_flag=True, help="every scope (an administrator)")
@click.option("--tenant", help="the tenant the client belongs to (MEAO_TENANT_ISOLATION=true)")
@click.option("--operator", is_flag=True,
              help="an operator: without a tenant, sees every tenant's resources under MEAO_TENANT_ISOLATION=true "
                   "(a client with neither --tenant nor --operator then sees none)")
@click.option("--credentials-file", type=click.Path(dir_okay=False, path_type=Path),
              help="also write the credentials there as JSON (mode 0600), for MEAO_CLIENT_CREDENTIALS_FILE")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def client_create(client_id: str, scopes: tuple[str, ...], all_scopes: bool, tenant: str | None, operator: bool,
                  credentials_file: Path | None, fmt: str) -> None:
    """Register CLIENT_ID and print its secret; the secret is shown this once and never stored."""
    from meao.auth.clients import create_client, write_private_file

    wanted = list(ALL_SCOPES) if all_scopes else [s for item in scopes for s in item.replace(",", " ").split()]
    try:
        with _session() as session:
            made, secret = create_client(session, client_id, wanted, tenant, operator)
            granted, tenant, operator = list(made.scopes), made.tenant, made.operator
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    creds = {"client_id": client_id, "client_secret": secret}
    doc = {**creds, "scope": " ".join(granted), "tenant": tenant, "operator": operator}
    if credentials_file:
        write_private_file(credentials_file, json.dumps(creds, indent=2) + "\n")
        click.echo(f"wrote the credentials of {client_id} to {credentials_file}", err=True)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    for key, value in doc.items():
        click.echo(f"{key}: {'yes' if value is True else value or '-'}")
    click.echo("the secret is shown only now: store it (e.g. MEAO_CLIENT_ID / MEAO_CLIENT_SECRET)", err=True)


@client.command("list")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def client_list(fmt: str) -> None:
    """List the clients with their scopes and tenant (never their secrets)."""
    from meao.auth.clients import list_clients

    with _session() as session:
        rows = [{"client_id": c.client_id, "scope": " ".join(c.scopes), "tenant": c.tenant, "operator": c.operator,
                 "created": c.created_at.isoformat(timespec="seconds")} for c in list_clients(session)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no clients: `meao auth client create NAME --scope …` registers one", err=True)
        return
    width = max(len(r["client_id"]) for r in rows)
    for r in rows:
        role = "operator" if r["operator"] else f"tenant={r['tenant'] or '-'}"
        click.echo(f"{r['client_id']:<{width}}  {role}  {r['scope']}")


@client.command("delete")
@click.argument("client_id")
def client_delete(client_id: str) -> None:
    """Remove CLIENT_ID; the tokens it holds stop working at once."""
    from meao.auth.clients import delete_client

    try:
        with _session() as session:
            delete_client(session, client_id)
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"deleted client {client_id}")


@auth.command("token")
@click.option("--os-endpoint", "endpoint", metavar="URL", help="the MEAO (default: as for the other commands)")
def token_cmd(endpoint: str | None) -> None:
    """Print an access token of the configured client credentials (for curl: -H "Authorization: Bearer …").

    The credentials come from MEAO_CLIENT_ID/MEAO_CLIENT_SECRET, MEAO_CLIENT_CREDENTIALS_FILE or
    <MEAO_DATA_DIR>/admin-credentials.json, as for every other command.
    """
    import httpx

    from meao.auth.client_credentials import CredentialsError, client_auth
    from meao.oss.client import ClientError, resolve_endpoint

    try:
        url = resolve_endpoint(endpoint).url
        source = client_auth(url)
        if source is None:
            raise click.ClickException("no client credentials: set MEAO_CLIENT_ID and MEAO_CLIENT_SECRET, or "
                                       "MEAO_CLIENT_CREDENTIALS_FILE")
        with httpx.Client(timeout=30) as http:
            token = source.token(http)
    except (CredentialsError, ClientError, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from exc
    if token is None:
        raise click.ClickException(f"{url} has no token endpoint (MEAO_AUTH=none or jwt: ask its issuer)")
    click.echo(token)


@auth.command("scopes")
def scopes_cmd() -> None:
    """List meao's scopes and what each allows."""
    for name, text in SCOPES.items():
        click.echo(f"{name:<15} {text}")


def register(main: click.Group) -> None:
    """Add the ``auth`` group to the ``meao`` command."""
    main.add_command(auth)
