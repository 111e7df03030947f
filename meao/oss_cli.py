"""The OSS/operator commands of ``meao``: a command-line client of the MEAO's own Mm1 APIs.

``register(main)`` adds these groups to the ``meao`` command, in python-openstackclient style::

    meao package create|upload|list|show|enable|disable|delete
    meao app create|instantiate|operate|terminate|list|show|delete
    meao op list|show|retry|fail|cancel
    meao subscription create|list|show|delete
    meao host list|show|set|delete|capacity
    meao queues list|show|purge, meao workers list|drain|resume, meao jobs list|retry

Every command takes ``--os-endpoint URL``, ``--os-profile NAME`` and ``--timeout SECONDS`` (see
``meao.client`` for how the endpoint is chosen: option > ``MEAO_ENDPOINT`` > ``~/.config/meao/client.yaml``
> ``http://127.0.0.1:8080``); commands that print take ``-f table|json|yaml|value`` and ``-c COLUMN``
(repeatable). Columns and fields keep the API's JSON names (``appDId``, ``onboardingState`` …); the app
commands add two derived columns, ``state`` (instantiatedAppState.operationalState) and ``host``.

Progress (upload bytes and rate, ``--wait`` state and elapsed time) goes to stderr, rewritten in place
when stderr is a terminal or ``--progress`` is given; otherwise ``--wait`` prints one line per state.

Exit codes a script can rely on:

    0  success
    1  the operation failed: the MEAO answered with a ProblemDetails, or the onboarding / LCM
       operation that --wait followed failed (its ProblemDetails is printed)
    2  usage error (bad options or arguments, unusable client configuration)
    3  the endpoint cannot be reached (the message names the URL and where it came from)
    4  not found (HTTP 404)
    5  conflict (HTTP 409: the resource is not in a state that allows the request)
    6  --wait gave up after --wait-timeout; the operation goes on in the MEAO
    130, 141  interrupted (Ctrl-C), output pipe closed (e.g. ``| head``)
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import yaml

from meao.client import (
    SUBSCRIPTION_TYPES,
    ClientProblem,
    ConfigError,
    EndpointUnreachable,
    MeaoClient,
    OperationFailed,
    WaitTimeout,
    file_digest,
    onboarding_ended,
    read_manifest_metadata,
    resolve_endpoint,
)

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_WAIT_TIMEOUT = 1, 2, 3, 4, 5, 6
EXIT_CODES_EPILOG = (
    "\b\nExit codes: 0 ok; 1 the operation failed (ProblemDetails, failed onboarding or LCM operation);\n"
    "2 usage error; 3 endpoint unreachable; 4 not found (404); 5 conflict (409);\n"
    "6 --wait gave up (the operation goes on)."
)
FORMATS = ("table", "json", "yaml", "value")
PACKAGE_COLUMNS = ("id", "appDId", "appName", "onboardingState", "operationalState", "usageState")
APP_COLUMNS = ("id", "appName", "instantiationState", "state", "host")
OP_COLUMNS = ("id", "lcmOperation", "operationState", "appInstanceId")
SUBSCRIPTION_COLUMNS = ("id", "api", "subscriptionType", "callbackUri")
ALL_SUBSCRIPTION_TYPES = tuple(t for types in SUBSCRIPTION_TYPES.values() for t in types)
DEFAULT_WAIT_TIMEOUT = 1800
# RFC 2606 reserves .invalid: the MEAO's fetch of this placeholder fails at once, and our upload
# (which moves the package to a new onboarding attempt) supersedes that fetch anyway.
UPLOAD_PLACEHOLDER = "http://uploaded-by-meao-cli.invalid/"
_META = "meao.oss"


class CommandFailed(click.ClickException):
    """A failure the CLI itself detects (not an HTTP answer): message, hint and exit code."""

    def __init__(self, message: str, hint: str | None = None, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.hint = hint
        self.exit_code = code

    def show(self, file: Any = None) -> None:
        """Print ``meao: message`` and the hint on stderr."""
        _error(self.message, self.hint)


# ------------------------------------------------------------------------------------------ errors
def _error(message: str, hint: str | None = None) -> None:
    click.echo(f"meao: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def _problem_text(problem: dict[str, Any], status: int | None = None) -> str:
    title = problem.get("title") or "Error"
    status = status or problem.get("status")
    head = f"{title} (HTTP {status})" if status else str(title)
    detail = problem.get("detail")
    return f"{head}: {detail}" if detail else head


def _hint_for(status: int, group: str) -> str:
    if status == 404:
        return f"check the identifier; `meao {group} list` shows the existing ones"
    if status == 409:
        return f"the resource is not in a state that allows this; `meao {group} show ID` shows its state"
    if status == 401:
        return ("the MEAO wants a valid access token: set MEAO_CLIENT_ID and MEAO_CLIENT_SECRET, or "
                "MEAO_CLIENT_CREDENTIALS_FILE (`meao auth client create` makes a client)")
    if status == 403:
        return "the client lacks the scope this needs; use a client registered with it"
    if status == 413:
        return "the package exceeds the MEAO's size limit (MEAO_MAX_PACKAGE_BYTES on the server)"
    if status >= 500:
        return "the MEAO failed or is unavailable; retry later, or ask its operators to read the server log"
    return "fix the request as the detail says; `--help` lists the options"


def _failure_hint(exc: OperationFailed) -> str:
    res_id = exc.resource.get("id")
    if "onboardingState" in exc.resource:
        return (f"fix the package, then `meao package upload {res_id} FILE --wait`, or remove it with "
                f"`meao package delete {res_id}`")
    if exc.resource.get("operationState") == "FAILED_TEMP":
        return (f"`meao op retry {res_id} --wait` resumes it; `meao op fail {res_id}` gives up and rolls "
                "back what it created")
    return f"`meao op show {res_id}` shows the operation"


class _ApiGroup(click.Group):
    """A command group whose commands turn every client error into a message and an exit code.

    This is the one place where errors are handled: no command prints a traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; map ClientProblem/unreachable/failure/timeout to the documented exit codes."""
        group = self.name or "package"
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            # `meao` logs at INFO by default, and httpx would then log every request on stderr
            logging.getLogger("httpx").setLevel(logging.WARNING)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ClientProblem as exc:
            hint = ctx.meta.get(_META, {}).get("hints", {}).get(exc.status) or _hint_for(exc.status, group)
            _error(_problem_text(exc.problem, exc.status), hint)
            ctx.exit(_status_code(exc))
        except EndpointUnreachable as exc:
            endpoint = ctx.meta.get(_META, {}).get("resolved")
            source = f" (endpoint from {endpoint.source})" if endpoint else ""
            _error(f"cannot reach the MEAO at {exc.url}: {exc.reason}",
                   f"check that `meao serve` runs there and answers{source}; choose another with "
                   "--os-endpoint, MEAO_ENDPOINT or ~/.config/meao/client.yaml")
            ctx.exit(EXIT_UNREACHABLE)
        except OperationFailed as exc:
            _error(f"{exc.kind} {exc.resource.get('id')} failed: {_problem_text(exc.problem)}", _failure_hint(exc))
            ctx.exit(EXIT_FAILED)
        except WaitTimeout as exc:
            state = exc.resource.get("operationState") or exc.resource.get("onboardingState") or "?"
            show = "package" if "onboardingState" in exc.resource else "op"
            _error(f"stopped waiting after {exc.waited:.0f}s: {exc.kind} {exc.resource.get('id')} is {state}",
                   f"it goes on in the MEAO; follow it with `meao {show} show {exc.resource.get('id')}`")
            ctx.exit(EXIT_WAIT_TIMEOUT)
        except ConfigError as exc:
            _error(str(exc), "fix the file, or give --os-endpoint")
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            _error("interrupted; a started operation goes on in the MEAO")
            ctx.exit(130)
        except BrokenPipeError:
            # the reader of our output went away (`| head`): stop quietly, as other CLIs do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except OSError as exc:  # a local file: unreadable package, directory instead of file …
            _error(f"{exc.filename or 'local file'}: {exc.strerror or exc}")
            ctx.exit(EXIT_FAILED)
        except Exception as exc:
            if os.environ.get("MEAO_DEBUG"):
                raise
            _error(f"internal error in the CLI: {type(exc).__name__}: {exc}",
                   "rerun with MEAO_DEBUG=1 for the traceback and report it")
            ctx.exit(EXIT_FAILED)


# ------------------------------------------------------------------------------------------ options
def _meta() -> dict[str, Any]:
    return click.get_current_context().meta.setdefault(_META, {})


def _store(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.meta.setdefault(_META, {})[key] = value
        return value

    return callback


def api_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--os-endpoint``, ``--os-profile``, ``--timeout``: where and how the client talks."""
    options = [
        click.option("--os-endpoint", metavar="URL", expose_value=False, callback=_store("endpoint"),
                     help="MEAO endpoint [default: $MEAO_ENDPOINT, else ~/.config/meao/client.yaml, "
                          "else http://127.0.0.1:8080]"),
        click.option("--os-profile", metavar="NAME", expose_value=False, callback=_store("profile"),
                     help="profile of ~/.config/meao/client.yaml [default: $MEAO_PROFILE]"),
        click.option("--timeout", type=click.FloatRange(min=0.1), metavar="SECONDS", expose_value=False,
                     callback=_store("timeout"), help="HTTP timeout per request [default: 30]"),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-f/--format`` and ``-c/--column``."""
    options = [
        click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                     expose_value=False, callback=_store("format"), help="output format"),
        click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN", expose_value=False,
                     callback=_store("columns"), help="show this column / field (repeatable)"),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress/--no-progress``: live progress on stderr [default: when stderr is a terminal]."""
    return click.option("--progress/--no-progress", default=None, expose_value=False, callback=_store("progress"),
                        help="rewrite progress in place on stderr [default: when stderr is a terminal]")(func)


def wait_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--wait`` and ``--wait-timeout``."""
    options = [
        click.option("--wait", is_flag=True, help="follow the operation until it ends; exit 1 if it fails"),
        click.option("--wait-timeout", type=click.FloatRange(min=0), default=DEFAULT_WAIT_TIMEOUT,
                     show_default=True, metavar="SECONDS", expose_value=False, callback=_store("wait_timeout"),
                     help="give up waiting after this long (exit 6); 0 waits forever"),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), progress_option(func))


def _hints(hints: dict[int, str]) -> None:
    """Command-specific advice for an HTTP status, shown instead of the generic one."""
    _meta().setdefault("hints", {}).update(hints)


def _client() -> MeaoClient:
    """The client for this invocation, on the endpoint chosen by options, environment or config file."""
    meta = _meta()
    endpoint = resolve_endpoint(meta.get("endpoint"), meta.get("profile"), meta.get("timeout"))
    meta["resolved"] = endpoint
    client = MeaoClient(endpoint.url, endpoint.timeout)
    click.get_current_context().call_on_close(client.close)
    return client


def _wait_timeout() -> float | None:
    value = _meta().get("wait_timeout", DEFAULT_WAIT_TIMEOUT)
    return None if not value else float(value)


# ------------------------------------------------------------------------------------------ output
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table: a header line, a dashed rule, one line per row."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _dump(data: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n"))


def emit_list(rows: list[dict[str, Any]], default_columns: Sequence[str]) -> None:
    """Print a list: ``default_columns`` unless -c selects others."""
    meta = _meta()
    columns = list(meta.get("columns") or default_columns)
    fmt = meta.get("format") or "table"
    picked = [{c: row.get(c) for c in columns} for row in rows]
    if fmt in ("json", "yaml"):
        _dump(picked, fmt)
    elif fmt == "value":
        for row in picked:
            click.echo(" ".join(_cell(row[c]) for c in columns))
    else:
        click.echo(render_table(columns, [[_cell(row[c]) for c in columns] for row in picked]))


def emit_one(resource: dict[str, Any]) -> None:
    """Print one resource as field/value pairs (every field unless -c selects some)."""
    meta = _meta()
    fields = list(meta.get("columns") or resource)
    fmt = meta.get("format") or "table"
    picked = {f: resource.get(f) for f in fields}
    if fmt in ("json", "yaml"):
        _dump(picked, fmt)
    elif fmt == "value":
        for value in picked.values():
            click.echo(_cell(value))
    else:
        click.echo(render_table(("Field", "Value"), [[f, _cell(v)] for f, v in picked.items()]))


class StatusLine:
    """A status line on stderr: rewritten in place when live, else printed once per change of ``key``."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._width = 0
        self._key: str | None = None
        self._at = 0.0

    def show(self, text: str, key: str | None = None, *, force: bool = False) -> None:
        """Display ``text``; live updates are throttled to 10 per second unless ``force``."""
        if self.live:
            now = time.monotonic()
            if not force and now - self._at < 0.1:
                return
            self._at = now
            click.echo("\r" + text + " " * max(self._width - len(text), 0), err=True, nl=False)
            self._width = len(text)
        elif key is not None and key != self._key:
            self._key = key
            click.echo(text, err=True)

    def close(self) -> None:
        """End the live line so what follows starts on a new line."""
        if self.live and self._width:
            click.echo("", err=True)
            self._width = 0


@contextmanager
def _status_line() -> Iterator[StatusLine]:
    progress = _meta().get("progress")
    line = StatusLine(progress if progress is not None else sys.stderr.isatty())
    try:
        yield line
    finally:
        line.close()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _upload_progress(line: StatusLine, name: str) -> Callable[[int, int], None]:
    start = time.monotonic()

    def report(sent: int, total: int) -> None:
        rate = sent / max(time.monotonic() - start, 1e-3)
        pct = 100 * sent / total if total else 100
        line.show(f"uploading {name}: {_human(sent)} / {_human(total)} ({pct:3.0f}%) {_human(rate)}/s",
                  force=sent >= total)

    return report


def _pkg_poll(line: StatusLine) -> Callable[[dict[str, Any], float], None]:
    def report(info: dict[str, Any], elapsed: float) -> None:
        state = info.get("onboardingState", "?")
        line.show(f"package {info.get('id')}: {state} ({elapsed:.0f}s)", key=state)

    return report


def _op_poll(line: StatusLine) -> Callable[[dict[str, Any], float], None]:
    def report(op: dict[str, Any], elapsed: float) -> None:
        state = op.get("operationState", "?")
        line.show(f"{op.get('lcmOperation', 'operation')} {op.get('id')}: {state} ({elapsed:.0f}s)", key=state)

    return report


# ---------------------------------------------------------------------------------------- packages
@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def package() -> None:
    """Application packages (Mm1 app_pkgm, MEC 010-2 clause 7.3)."""


@package.command("list")
@click.option("--filter", "filter_", metavar="EXPR", help="MEC 009 filter, e.g. '(eq,operationalState,ENABLED)'")
@api_options
@output_options
def package_list(filter_: str | None) -> None:
    """List application packages."""
    emit_list(_client().list_packages(filter_), PACKAGE_COLUMNS)


@package.command("show")
@click.argument("pkg_id")
@api_options
@output_options
def package_show(pkg_id: str) -> None:
    """Show one application package (AppPkgInfo)."""
    emit_one(_client().get_package(pkg_id))


def _properties(pairs: Sequence[str]) -> dict[str, str] | None:
    data = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--property")
        data[key] = value
    return data or None


def _wait_settled(client: MeaoClient, pkg_id: str, line: StatusLine) -> dict[str, Any]:
    """Let a running fetch or processing of the package end (CREATED or ONBOARDED)."""
    return client.wait_for(lambda: client.get_package(pkg_id),
                           lambda i: i.get("onboardingState") in ("CREATED", "ONBOARDED"),
                           kind="onboarding of package", timeout=_wait_timeout(), on_poll=_pkg_poll(line))


def _upload(client: MeaoClient, pkg_id: str, file: Path, line: StatusLine) -> None:
    """PUT the content once the package is CREATED; a fetch still running is waited for, not raced."""
    for _ in range(3):
        info = _wait_settled(client, pkg_id, line)
        if info.get("onboardingState") == "ONBOARDED":
            raise CommandFailed(f"application package {pkg_id} is already ONBOARDED; there is nothing to upload",
                                f"create a new package for {file.name}", EXIT_CONFLICT)
        try:
            client.upload_package(pkg_id, file, _upload_progress(line, file.name))
            return
        except ClientProblem as exc:
            if exc.status != 409:  # 409: a fetch started between our read and our PUT; wait for it again
                raise
        finally:
            line.close()
    raise CommandFailed(f"application package {pkg_id} kept changing state; the upload did not start",
                        f"`meao package show {pkg_id}`, then retry the upload")


def _check_digest(info: dict[str, Any], file: Path) -> None:
    checksum = info.get("checksum") or {}
    algorithm, expected = checksum.get("algorithm", "SHA-256"), str(checksum.get("hash", "")).lower()
    try:
        actual = file_digest(file, algorithm)
    except ValueError:  # an algorithm hashlib does not know: the MEAO checks it
        return
    if expected and actual != expected:
        raise CommandFailed(f"{file} has {algorithm} {actual}, but application package {info.get('id')} was "
                            f"created with checksum {expected}",
                            "upload the right file, or create a new package with this file's checksum")


def _finish_package(client: MeaoClient, pkg_id: str, wait: bool, line: StatusLine) -> dict[str, Any]:
    if wait:
        return client.wait_package(pkg_id, timeout=_wait_timeout(), on_poll=_pkg_poll(line))
    return client.get_package(pkg_id)


def _fetch_failed(info: dict[str, Any], uri: str) -> bool:
    """True when onboarding failed while reading ``uri`` (the MEAO names appPkgPath in those details)."""
    failure = info.get("onboardingFailureDetails") or {}
    return info.get("onboardingState") == "CREATED" and uri in str(failure.get("detail", ""))


def _create_from_file(client: MeaoClient, file: Path, name: str, version: str, algorithm: str,
                      provider: str | None, properties: dict[str, str] | None, wait: bool,
                      line: StatusLine) -> dict[str, Any]:
    """POST with a file:// appPkgPath; upload the file instead when the MEAO refuses or cannot read it."""
    checksum = file_digest(file, algorithm)
    uri = file.resolve().as_uri()
    try:
        created = client.create_package(name, version, uri, checksum, algorithm, provider, properties)
    except ClientProblem as exc:
        if exc.status != 400:
            raise
        click.echo(f"meao: the MEAO does not read {uri} ({exc.detail}); uploading the file instead", err=True)
        created = client.create_package(name, version, UPLOAD_PLACEHOLDER + file.name, checksum, algorithm,
                                        provider, properties)
        _upload(client, created["id"], file, line)
        return _finish_package(client, created["id"], wait, line)
    # follow the fetch: past it (PROCESSING) the MEAO has the file; a failed read means "upload it"
    info = client.wait_for(lambda: client.get_package(created["id"]),
                           lambda i: onboarding_ended(i) or i.get("onboardingState") == "PROCESSING",
                           kind="onboarding of package", timeout=_wait_timeout(), on_poll=_pkg_poll(line))
    if _fetch_failed(info, uri):
        detail = info["onboardingFailureDetails"].get("detail")
        click.echo(f"meao: the MEAO could not read {uri} ({detail}); uploading the file instead", err=True)
        _upload(client, created["id"], file, line)
    elif info.get("onboardingFailureDetails"):
        raise OperationFailed("onboarding of package", info, info["onboardingFailureDetails"])
    return _finish_package(client, created["id"], wait, line)


@package.command("create")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="local package zip: the MEAO reads it as a file:// URI (same machine, under "
                   "MEAO_PKG_FILE_ROOT), else the CLI uploads it")
@click.option("--path", "uri", metavar="URI", help="http(s) or file URI the MEAO fetches the package from")
@click.option("--checksum-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="with --path: a local copy of the package, to compute its checksum")
@click.option("--checksum", "checksum_hash", metavar="HEX", help="with --path: the package's checksum")
@click.option("--algorithm", type=click.Choice(["SHA-224", "SHA-256", "SHA-384", "SHA-512"]), default="SHA-256",
              show_default=True, help="checksum algorithm")
@click.option("--name", help="appPkgName [default with --file: vnf_product_name of the manifest]")
@click.option("--version", "pkg_version", help="appPkgVersion [default with --file: vnf_package_version]")
@click.option("--provider", help="appProvider")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE", help="userDefinedData entry")
@wait_options
@api_options
@output_options
def package_create(file_: Path | None, uri: str | None, checksum_file: Path | None, checksum_hash: str | None,
                   algorithm: str, name: str | None, pkg_version: str | None, provider: str | None,
                   properties: tuple[str, ...], wait: bool) -> None:
    """Create an application package; the MEAO fetches it from --path, or reads/receives --file.

    \b
    meao package create --name N --version V --checksum-file pkg.zip --path https://repo/pkg.zip
    meao package create --file pkg.zip --wait
    """
    if (file_ is None) == (uri is None):
        raise click.UsageError("give either --file FILE or --path URI")
    if file_ is not None and (checksum_file or checksum_hash):
        raise click.UsageError("--checksum/--checksum-file go with --path; --file computes the checksum")
    if uri is not None:
        if not name or not pkg_version:
            raise click.UsageError("--path needs --name and --version")
        if (checksum_file is None) == (checksum_hash is None):
            raise click.UsageError("--path needs either --checksum-file FILE or --checksum HEX")
    user_data = _properties(properties)
    client = _client()
    with _status_line() as line:
        if file_ is not None:
            meta = read_manifest_metadata(file_)
            name = name or meta.get("vnf_product_name")
            pkg_version = pkg_version or meta.get("vnf_package_version")
            if not name or not pkg_version:
                raise click.UsageError(f"{file_} has no manifest metadata to name it; give --name and --version")
            info = _create_from_file(client, file_, name, pkg_version, algorithm, provider, user_data, wait, line)
        else:
            digest = file_digest(checksum_file, algorithm) if checksum_file else str(checksum_hash)
            created = client.create_package(str(name), str(pkg_version), str(uri), digest, algorithm, provider,
                                            user_data)
            info = _finish_package(client, created["id"], wait, line)
    emit_one(info)


@package.command("upload")
@click.argument("pkg_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wait_options
@api_options
@output_options
def package_upload(pkg_id: str, file: Path, wait: bool) -> None:
    """Upload the content of a CREATED package (PUT package_content), streamed with progress."""
    client = _client()
    _check_digest(client.get_package(pkg_id), file)
    with _status_line() as line:
        _upload(client, pkg_id, file, line)
        info = _finish_package(client, pkg_id, wait, line)
    emit_one(info)


@package.command("enable")
@click.argument("pkg_id")
@api_options
def package_enable(pkg_id: str) -> None:
    """Enable an onboarded package: it can be instantiated again."""
    _client().set_package_state(pkg_id, "ENABLED")


@package.command("disable")
@click.argument("pkg_id")
@api_options
def package_disable(pkg_id: str) -> None:
    """Disable an onboarded package: no new instances (existing ones keep running)."""
    _client().set_package_state(pkg_id, "DISABLED")


@package.command("delete")
@click.argument("pkg_ids", nargs=-1, required=True, metavar="PKG_ID...")
@click.option("--disable", "disable_first", is_flag=True, help="disable an ENABLED package first")
@api_options
def package_delete(pkg_ids: tuple[str, ...], disable_first: bool) -> None:
    """Delete application packages (an onboarded one must be DISABLED and NOT_IN_USE)."""
    client = _client()

    def delete(pkg_id: str) -> None:
        if disable_first:
            info = client.get_package(pkg_id)
            if info.get("onboardingState") == "ONBOARDED" and info.get("operationalState") == "ENABLED":
                client.set_package_state(pkg_id, "DISABLED")
        client.delete_package(pkg_id)

    _each(pkg_ids, delete)


def _status_code(exc: ClientProblem | CommandFailed) -> int:
    if isinstance(exc, CommandFailed):
        return exc.exit_code
    return {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}.get(exc.status, EXIT_FAILED)


def _each(ids: Sequence[str], action: Callable[[str], None]) -> None:
    """Apply ``action`` to every id; report each failure and exit with the code of the first one."""
    if len(ids) == 1:
        action(ids[0])
        return
    failed: list[int] = []
    for item in ids:
        try:
            action(item)
        except (ClientProblem, CommandFailed) as exc:
            failed.append(_status_code(exc))
            text = _problem_text(exc.problem, exc.status) if isinstance(exc, ClientProblem) else exc.message
            _error(f"{item}: {text}")
    if failed:
        raise CommandFailed(f"{len(failed)} of {len(ids)} failed", code=failed[0])


# ------------------------------------------------------------------------------------ applications
@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def app() -> None:
    """Application instances (Mm1 app_lcm, MEC 010-2 clause 7.4)."""


def _with_derived(client: MeaoClient, apps: list[dict[str, Any]], need_host: bool) -> list[dict[str, Any]]:
    """Add ``state`` (operationalState when INSTANTIATED) and ``host`` (from the instantiate request)."""
    instantiated = {a["id"] for a in apps if a.get("instantiationState") == "INSTANTIATED"}
    hosts = client.instance_hosts(instantiated) if need_host and instantiated else {}
    rows = []
    for inst in apps:
        state = (inst.get("instantiatedAppState") or {}).get("operationalState")
        named = hosts.get(inst["id"]) or []
        host = named[0] if len(named) == 1 else (f"one of {','.join(named)}" if named else None)
        rows.append({**inst, "state": state, "host": host if inst["id"] in instantiated else None})
    return rows


@app.command("list")
@click.option("--filter", "filter_", metavar="EXPR", help="MEC 009 filter, e.g. '(eq,appName,mec-minimal)'")
@api_options
@output_options
def app_list(filter_: str | None) -> None:
    """List application instances."""
    client = _client()
    need_host = "host" in (_meta().get("columns") or APP_COLUMNS)
    emit_list(_with_derived(client, client.list_apps(filter_), need_host), APP_COLUMNS)


@app.command("show")
@click.argument("app_id")
@api_options
@output_options
def app_show(app_id: str) -> None:
    """Show one application instance (AppInstanceInfo, plus state and host)."""
    client = _client()
    emit_one(_with_derived(client, [client.get_app(app_id)], True)[0])


@app.command("create")
@click.argument("appd_id")
@click.option("--name", help="appInstanceName")
@click.option("--description", help="appInstanceDescription")
@api_options
@output_options
def app_create(appd_id: str, name: str | None, description: str | None) -> None:
    """Create an application instance (NOT_INSTANTIATED) of the onboarded, enabled package APPD_ID."""
    _hints({404: "onboard the package first; `meao package list -c appDId -c onboardingState` shows the appDIds",
            409: "enable the package first: `meao package enable PKG_ID`"})
    client = _client()
    emit_one(_with_derived(client, [client.create_app(appd_id, name, description)], False)[0])


def _follow(client: MeaoClient, op_id: str, wait: bool) -> None:
    if wait:
        with _status_line() as line:
            op = client.wait_op(op_id, timeout=_wait_timeout(), on_poll=_op_poll(line))
    else:
        op = client.get_op(op_id)
    emit_one(op)


@app.command("instantiate")
@click.argument("app_id")
@click.option("--host", "hosts", multiple=True, required=True, metavar="HOST_ID",
              help="candidate MEC host (repeatable; the MEAO places the app on one of them)")
@click.option("--area", metavar="AREA", help="servedArea (meao extension): the cell or area of the users")
@wait_options
@api_options
@output_options
def app_instantiate(app_id: str, hosts: tuple[str, ...], area: str | None, wait: bool) -> None:
    """Instantiate an application instance; prints the LCM operation occurrence."""
    _hints({400: "--host takes ids of MEC hosts in the MEAO's inventory (GET <endpoint>/ops/v1/mec_hosts)"})
    client = _client()
    _follow(client, client.instantiate(app_id, list(hosts), area), wait)


@app.command("operate")
@click.argument("app_id")
@click.option("--state", type=click.Choice(["STARTED", "STOPPED"]), required=True, help="changeStateTo")
@click.option("--graceful-timeout", type=click.IntRange(min=0), metavar="SECONDS",
              help="stop GRACEFUL with this gracefulStopTimeout [default: FORCEFUL stop]")
@wait_options
@api_options
@output_options
def app_operate(app_id: str, state: str, graceful_timeout: int | None, wait: bool) -> None:
    """Start or stop an instantiated application instance."""
    if graceful_timeout is not None and state == "STARTED":
        raise click.UsageError("--graceful-timeout applies to --state STOPPED only")
    client = _client()
    _follow(client, client.operate(app_id, state, graceful_timeout), wait)


@app.command("terminate")
@click.argument("app_id")
@click.option("--graceful-timeout", type=click.IntRange(min=0), metavar="SECONDS",
              help="terminate GRACEFUL with this gracefulTerminationTimeout [default: FORCEFUL]")
@wait_options
@api_options
@output_options
def app_terminate(app_id: str, graceful_timeout: int | None, wait: bool) -> None:
    """Terminate an application instance (it becomes NOT_INSTANTIATED)."""
    client = _client()
    _follow(client, client.terminate(app_id, graceful_timeout), wait)


@app.command("delete")
@click.argument("app_ids", nargs=-1, required=True, metavar="APP_ID...")
@api_options
def app_delete(app_ids: tuple[str, ...]) -> None:
    """Delete NOT_INSTANTIATED application instances."""
    client = _client()
    _each(app_ids, client.delete_app)


# ------------------------------------------------------------------------------ op occurrences
@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def op() -> None:
    """Application LCM operation occurrences (MEC 010-2 clauses 7.4.9 to 7.4.13)."""


@op.command("list")
@click.option("--instance", "app_id", metavar="APP_ID", help="only the operations of this application instance")
@api_options
@output_options
def op_list(app_id: str | None) -> None:
    """List LCM operation occurrences."""
    emit_list(_client().list_ops(app_id), OP_COLUMNS)


@op.command("show")
@click.argument("op_id")
@api_options
@output_options
def op_show(op_id: str) -> None:
    """Show one LCM operation occurrence (AppLcmOpOcc, with its error when it failed)."""
    emit_one(_client().get_op(op_id))


@op.command("retry")
@click.argument("op_id")
@wait_options
@api_options
@output_options
def op_retry(op_id: str, wait: bool) -> None:
    """Retry a FAILED_TEMP operation: it continues where it stopped."""
    client = _client()
    client.retry_op(op_id)
    _follow(client, op_id, wait)


@op.command("fail")
@click.argument("op_id")
@api_options
@output_options
def op_fail(op_id: str) -> None:
    """Mark a FAILED_TEMP operation as finally FAILED (what it created is rolled back)."""
    emit_one(_client().fail_op(op_id))


@op.command("cancel")
@click.argument("op_id")
@click.option("--mode", type=click.Choice(["GRACEFUL", "FORCEFUL"]), default="GRACEFUL", show_default=True,
              help="cancelMode")
@wait_options
@api_options
@output_options
def op_cancel(op_id: str, mode: str, wait: bool) -> None:
    """Cancel a running operation; it ends FAILED_TEMP (then retry or fail it)."""
    client = _client()
    client.cancel_op(op_id, mode)
    if not wait:
        emit_one(client.get_op(op_id))
        return
    with _status_line() as line:
        result = client.wait_for(lambda: client.get_op(op_id),
                                 lambda o: o.get("operationState") not in ("STARTING", "PROCESSING"),
                                 kind="operation", timeout=_wait_timeout(), on_poll=_op_poll(line))
    emit_one(result)


# ---------------------------------------------------------------------------------- subscriptions
@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def subscription() -> None:
    """Subscriptions to package (pkgm) and lifecycle (lcm) notifications."""


API_CHOICE = click.Choice(tuple(SUBSCRIPTION_TYPES))


def _find_subscription(client: MeaoClient, sub_id: str, api: str | None) -> tuple[str, dict[str, Any]]:
    """(api, SubscriptionInfo): look in the given API, else in pkgm then lcm."""
    apis = [api] if api else list(SUBSCRIPTION_TYPES)
    for candidate in apis:
        try:
            return candidate, client.get_subscription(candidate, sub_id)
        except ClientProblem as exc:
            if exc.status != 404 or candidate == apis[-1]:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@subscription.command("list")
@click.option("--api", type=API_CHOICE, help="only this API [default: both]")
@click.option("--type", "sub_type", type=click.Choice(ALL_SUBSCRIPTION_TYPES), help="only this subscriptionType")
@api_options
@output_options
def subscription_list(api: str | None, sub_type: str | None) -> None:
    """List subscriptions."""
    client = _client()
    apis = [api] if api else [MeaoClient.api_of(sub_type)] if sub_type else list(SUBSCRIPTION_TYPES)
    rows = [{**link, "api": name} for name in apis for link in client.list_subscriptions(name, sub_type)]
    if "callbackUri" in (_meta().get("columns") or SUBSCRIPTION_COLUMNS):
        for row in rows:  # the link list has no callbackUri; subscriptions are few, read each
            try:
                row["callbackUri"] = client.get_subscription(row["api"], row["id"]).get("callbackUri")
            except ClientProblem as exc:
                if exc.status != 404:  # deleted meanwhile: leave it blank
                    raise
    emit_list(rows, SUBSCRIPTION_COLUMNS)


@subscription.command("show")
@click.argument("sub_id")
@click.option("--api", type=API_CHOICE, help="the subscription's API [default: look in both]")
@api_options
@output_options
def subscription_show(sub_id: str, api: str | None) -> None:
    """Show one subscription."""
    name, info = _find_subscription(_client(), sub_id, api)
    emit_one({**info, "api": name})


@subscription.command("create")
@click.option("--type", "sub_type", type=click.Choice(ALL_SUBSCRIPTION_TYPES), required=True,
              help="subscriptionType (it selects the API)")
@click.option("--callback", required=True, metavar="URL", help="callbackUri the notifications are POSTed to")
@click.option("--api", type=API_CHOICE, help="check that --type belongs to this API")
@click.option("--filter", "filter_", metavar="JSON",
              help="the type's filter as JSON (AppPkgFilter, AppInstanceSubscriptionFilter or "
                   "AppLcmOpOccSubscriptionFilter)")
@api_options
@output_options
def subscription_create(sub_type: str, callback: str, api: str | None, filter_: str | None) -> None:
    """Subscribe a callback URL to notifications."""
    if api and MeaoClient.api_of(sub_type) != api:
        raise click.UsageError(f"{sub_type} is a {MeaoClient.api_of(sub_type)} subscription type, not {api}")
    try:
        parsed = json.loads(filter_) if filter_ else None
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--filter") from exc
    info = _client().create_subscription(sub_type, callback, parsed)
    emit_one({**info, "api": MeaoClient.api_of(sub_type)})


@subscription.command("delete")
@click.argument("sub_ids", nargs=-1, required=True, metavar="SUB_ID...")
@click.option("--api", type=API_CHOICE, help="the subscriptions' API [default: look in both]")
@api_options
def subscription_delete(sub_ids: tuple[str, ...], api: str | None) -> None:
    """Delete subscriptions."""
    client = _client()
    _each(sub_ids, lambda sub_id: client.delete_subscription(_find_subscription(client, sub_id, api)[0], sub_id))


# ------------------------------------------------------------------------------------------ wiring
HOST_COLUMNS = ("id", "name", "cloud", "availabilityZone", "queue", "servedAreas")


@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def host() -> None:
    """MEC hosts: the edge PoP inventory (ops API /ops/v1/mec_hosts)."""


@host.command("list")
@api_options
@output_options
def host_list() -> None:
    """List MEC hosts."""
    emit_list(_client().list_hosts(), HOST_COLUMNS)


@host.command("show")
@click.argument("host_id")
@api_options
@output_options
def host_show(host_id: str) -> None:
    """Show one MEC host."""
    emit_one(_client().get_host(host_id))


@host.command("set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_options
@output_options
def host_set(file: Path) -> None:
    """Create or replace MEC hosts from a YAML/JSON file (one MecHost, or a list under `mec_hosts:`)."""
    try:
        doc = yaml.safe_load(file.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from exc
    items = doc.get("mec_hosts") if isinstance(doc, dict) and "mec_hosts" in doc else [doc]
    if not all(isinstance(i, dict) and i.get("id") for i in items):
        raise click.BadParameter("every host needs an 'id' (and a 'cloud')", param_hint="FILE")
    client = _client()
    emit_list([client.put_host(item) for item in items], HOST_COLUMNS)


@host.command("delete")
@click.argument("host_ids", nargs=-1, required=True, metavar="HOST_ID...")
@api_options
def host_delete(host_ids: tuple[str, ...]) -> None:
    """Delete MEC hosts (409 while application instances run there)."""
    client = _client()
    _each(host_ids, client.delete_host)


@host.command("capacity")
@click.argument("host_id")
@click.option("--refresh", is_flag=True, help="read OpenStack now instead of the brief cache")
@api_options
@output_options
def host_capacity(host_id: str, refresh: bool) -> None:
    """Show what OpenStack says is free for a MEC host, and the project's quota headroom."""
    emit_one(_client().host_capacity(host_id, refresh))


# ------------------------------------------------------------------------- queues, workers, jobs
QUEUE_COLUMNS = ("name", "pops", "depth", "oldest", "running", "failures")
WORKER_COLUMNS = ("name", "status", "pops", "heartbeat", "concurrency", "running", "reserved", "jobsDone")
JOB_COLUMNS = ("state", "queue", "lcmOperation", "appLcmOpOccId", "step", "worker", "age", "error")
ERROR_CELL = 60


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def _since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    from datetime import datetime

    return max(0.0, time.time() - datetime.fromisoformat(stamp).timestamp())


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    error = job.get("error") or {}
    text = str(error.get("detail") or error.get("title") or "")
    if _meta().get("format") in (None, "table") and len(text) > ERROR_CELL:
        text = text[:ERROR_CELL - 1] + "…"  # `-f json` or `meao op show` has it whole
    return _row(job, {"age": _age(_since(job.get("enqueuedAt") or job.get("since"))), "error": text})


def _row(raw: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """Table / value output shows the derived cells; JSON / YAML keep the API's own values where both exist."""
    return {**derived, **raw} if _meta().get("format") in ("json", "yaml") else {**raw, **derived}


def _queue_row(queue: dict[str, Any]) -> dict[str, Any]:
    return _row(queue, {"pops": ",".join(queue.get("pops") or []) or "-",
                        "oldest": _age(queue.get("oldestJobAgeSeconds")), "running": len(queue.get("running") or []),
                        "failures": len(queue.get("recentFailures") or [])})


@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def queues() -> None:
    """Job queues: the catalogue queue and one queue per MEC host's PoP (ops API /ops/v1/queues)."""


@queues.command("list")
@api_options
@output_options
def queues_list() -> None:
    """Depth, oldest waiting job, running jobs and recent failures of every queue."""
    emit_list([_queue_row(q) for q in _client().list_queues()], QUEUE_COLUMNS)


@queues.command("show")
@click.argument("name")
@api_options
@output_options
def queues_show(name: str) -> None:
    """One queue; its waiting jobs are listed by `meao jobs list --waiting --queue NAME`."""
    raw = _client().get_queue(name)
    info = {**_queue_row(raw), "waiting": len(raw.get("waiting") or [])}
    emit_one({k: info.get(k) for k in ("name", "pops", "depth", "oldest", "waiting", "running", "failures")})


@queues.command("purge")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@api_options
@output_options
def queues_purge(name: str, yes: bool) -> None:
    """Drop every job waiting in a queue; their operations go to FAILED_TEMP (retry or fail them)."""
    client = _client()
    depth = client.get_queue(name)["depth"]
    if depth == 0:
        click.echo(f"queue {name} is empty; nothing to purge", err=True)
        return
    if not yes:
        question = (f"Purge {depth} waiting job(s) from queue {name}? Their LCM operations go to FAILED_TEMP "
                    "and their onboardings back to CREATED")
        try:
            confirmed = click.confirm(question, err=True)
        except click.Abort:  # end of input: nobody said yes
            click.echo("", err=True)
            confirmed = False
        if not confirmed:
            raise CommandFailed("purge cancelled; nothing was changed",
                                "answer y, or pass --yes when no one can answer (scripts)", code=EXIT_FAILED)
    result = client.purge_queue(name)
    click.echo(f"purged {result['purged']} job(s) from {name}; `meao jobs list --failed` shows the operations "
               "to retry or fail", err=True)
    emit_list([_job_row(j) for j in result["jobs"]], JOB_COLUMNS)


@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def workers() -> None:
    """MEPM-V workers: what each runs, heartbeat, drain and resume (ops API /ops/v1/workers)."""


def _worker_row(worker: dict[str, Any]) -> dict[str, Any]:
    return _row(worker, {"pops": ",".join(worker.get("pops") or []) or "-",
                         "heartbeat": _age(worker.get("heartbeatAgeSeconds")),
                         "running": len(worker.get("running") or [])})


@workers.command("list")
@api_options
@output_options
def workers_list() -> None:
    """Every worker that answers or sent a heartbeat recently."""
    emit_list([_worker_row(w) for w in _client().list_workers()], WORKER_COLUMNS)


@workers.command("drain")
@click.argument("name")
@api_options
def workers_drain(name: str) -> None:
    """Stop a worker taking new jobs; the jobs it runs finish (`meao workers resume` undoes it)."""
    click.echo(_client().control_worker(name, "drain")["message"])


@workers.command("resume")
@click.argument("name")
@api_options
def workers_resume(name: str) -> None:
    """Let a drained worker take jobs again."""
    click.echo(_client().control_worker(name, "resume")["message"])


@click.group(cls=_ApiGroup, epilog=EXIT_CODES_EPILOG)
def jobs() -> None:
    """Jobs: waiting in queues, running in workers, failed (ops API /ops/v1/jobs)."""


@jobs.command("list")
@click.option("--failed", "state", flag_value="FAILED", help="only failed jobs (operations in FAILED_TEMP)")
@click.option("--running", "state", flag_value="RUNNING", help="only jobs a worker runs now")
@click.option("--waiting", "state", flag_value="WAITING", help="only jobs waiting in a queue")
@click.option("--queue", metavar="NAME", help="only the jobs of this queue")
@api_options
@output_options
def jobs_list(state: str | None, queue: str | None) -> None:
    """List jobs: waiting (oldest first), running, failed."""
    emit_list([_job_row(j) for j in _client().list_jobs(state, queue)], JOB_COLUMNS)


@jobs.command("retry")
@click.argument("op_id")
@wait_options
@api_options
@output_options
def jobs_retry(op_id: str, wait: bool) -> None:
    """Retry a failed job: its FAILED_TEMP operation continues where it stopped (same as `meao op retry`)."""
    client = _client()
    client.retry_op(op_id)
    _follow(client, op_id, wait)


def register(main: click.Group) -> None:
    """Add the OSS and ops command groups (package, app, op, subscription, host, queues, workers, jobs)."""
    for group in (package, app, op, subscription, host, queues, workers, jobs):
        main.add_command(group)
    if not main.epilog:
        main.epilog = EXIT_CODES_EPILOG
