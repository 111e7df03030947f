"""How the commands fail: one message and hint on stderr, and an exit code a script can rely on.

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

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from meao.config import ClientEnvironment
from meao.oss.cli.hints import failure_hint, hint_for, unreachable_hint
from meao.oss.cli.invocation import META
from meao.oss.client import ClientProblem, ConfigError, EndpointUnreachable, OperationFailed, WaitTimeout

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_WAIT_TIMEOUT = 1, 2, 3, 4, 5, 6
EXIT_CODES_EPILOG = (
    "\b\nExit codes: 0 ok; 1 the operation failed (ProblemDetails, failed onboarding or LCM operation);\n"
    "2 usage error; 3 endpoint unreachable; 4 not found (404); 5 conflict (409);\n"
    "6 --wait gave up (the operation goes on)."
)


def report(message: str, hint: str | None = None) -> None:
    """Print ``meao: message`` and ``hint: …`` on stderr."""
    click.echo(f"meao: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def problem_text(problem: dict[str, Any], status: int | None = None) -> str:
    """``Title (HTTP status): detail`` of a ProblemDetails."""
    title = problem.get("title") or "Error"
    status = status or problem.get("status")
    head = f"{title} (HTTP {status})" if status else str(title)
    detail = problem.get("detail")
    return f"{head}: {detail}" if detail else head


class CommandFailed(click.ClickException):
    """A failure the CLI itself detects (not an HTTP answer): message, hint and exit code."""

    def __init__(self, message: str, hint: str | None = None, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.hint = hint
        self.exit_code = code

    def show(self, file: Any = None) -> None:
        """Print ``meao: message`` and the hint on stderr."""
        report(self.message, self.hint)


def status_code(exc: ClientProblem | CommandFailed) -> int:
    """The exit code of an HTTP error answer or of a failure the CLI detected."""
    if isinstance(exc, CommandFailed):
        return exc.exit_code
    return {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}.get(exc.status, EXIT_FAILED)


def each(ids: Sequence[str], action: Callable[[str], None]) -> None:
    """Apply ``action`` to every id; report each failure and exit with the code of the first one."""
    if len(ids) == 1:
        action(ids[0])
        return
    failed: list[int] = []
    for item in ids:
        try:
            action(item)
        except (ClientProblem, CommandFailed) as exc:
            failed.append(status_code(exc))
            text = problem_text(exc.problem, exc.status) if isinstance(exc, ClientProblem) else exc.message
            report(f"{item}: {text}")
    if failed:
        raise CommandFailed(f"{len(failed)} of {len(ids)} failed", code=failed[0])


class ApiGroup(click.Group):
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
            hint = ctx.meta.get(META, {}).get("hints", {}).get(exc.status) or hint_for(exc.status, group)
            report(problem_text(exc.problem, exc.status), hint)
            ctx.exit(status_code(exc))
        except EndpointUnreachable as exc:
            endpoint = ctx.meta.get(META, {}).get("resolved")
            source = f" (endpoint from {endpoint.source})" if endpoint else ""
            report(f"cannot reach the MEAO at {exc.url}: {exc.reason}", unreachable_hint(source))
            ctx.exit(EXIT_UNREACHABLE)
        except OperationFailed as exc:
            report(f"{exc.kind} {exc.resource.get('id')} failed: {problem_text(exc.problem)}", failure_hint(exc))
            ctx.exit(EXIT_FAILED)
        except WaitTimeout as exc:
            state = exc.resource.get("operationState") or exc.resource.get("onboardingState") or "?"
            show = "package" if "onboardingState" in exc.resource else "op"
            report(f"stopped waiting after {exc.waited:.0f}s: {exc.kind} {exc.resource.get('id')} is {state}",
                   f"it goes on in the MEAO; follow it with `meao {show} show {exc.resource.get('id')}`")
            ctx.exit(EXIT_WAIT_TIMEOUT)
        except ConfigError as exc:
            report(str(exc), "fix the file, or give --os-endpoint")
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            report("interrupted; a started operation goes on in the MEAO")
            ctx.exit(130)
        except BrokenPipeError:
            # the reader of our output went away (`| head`): stop quietly, as other CLIs do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except OSError as exc:  # a local file: unreadable package, directory instead of file …
            report(f"{exc.filename or 'local file'}: {exc.strerror or exc}")
            ctx.exit(EXIT_FAILED)
        except Exception as exc:
            if ClientEnvironment.from_environ().debug:
                raise
            report(f"internal error in the CLI: {type(exc).__name__}: {exc}",
                   "rerun with MEAO_DEBUG=1 for the traceback and report it")
            ctx.exit(EXIT_FAILED)
