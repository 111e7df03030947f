"""The one place where openstacksdk and keystoneauth failures become meao's VIM errors (ProblemDetails).

Every message says what failed at which VIM and what the operator can do about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as os_exc

from meao.nfvo.vim import QuotaExceeded, VimError, VimNotConfigured, VimNotFound, VimTimeout, VimUnavailable


def _message(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    return str(details or exc).strip()


def _is_quota_refusal(exc: Exception) -> bool:
    text = _message(exc).lower() + str(exc).lower()
    status = getattr(exc, "status_code", None)
    return status in (403, 409, 413) and ("quota" in text or status == 413)


def _is_unavailable(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) in (502, 503, 504)


_Rule = tuple[type[Exception] | tuple[type[Exception], ...], Callable[[Exception], bool] | None, type[VimError], str]

# First match wins, so a subclass comes before its base (NotFoundException is an HttpException,
# ResourceTimeout and ConfigException are SDKExceptions). Templates may use {where}, {cloud}, {exc},
# {message} (the service's own words) and {status} (the HTTP status).
_RULES: tuple[_Rule, ...] = (
    (os_exc.ResourceTimeout, None, VimTimeout,
     "{where} timed out ({exc}); the VIM may be overloaded: retry the operation later or raise the timeout."),
    (os_exc.NotFoundException, None, VimNotFound,
     ("{where}: not found ({message}); it was deleted outside meao or the id is wrong: re-run the operation "
     "so meao recreates or forgets it.")),
    (os_exc.HttpException, _is_quota_refusal, QuotaExceeded,
     ("{where} refused: quota exceeded ({message}); free resources in the project or ask the PoP operator "
     "to raise its quota.")),
    (os_exc.HttpException, _is_unavailable, VimUnavailable,
     "{where}: service unavailable (HTTP {status}: {message}); retry when the VIM is back."),
    (os_exc.HttpException, None, VimError,
     "{where} failed: HTTP {status}: {message}; check the request and the VIM's logs."),
    ((ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.DiscoveryFailure), None, VimUnavailable,
     "{where}: cannot reach the VIM ({exc}); check its endpoint in clouds.yaml and that its APIs are up."),
    (ksa_exc.Unauthorized, None, VimError,
     "{where}: authentication failed ({exc}); check the credentials of cloud '{cloud}' in clouds.yaml."),
    (os_exc.ConfigException, None, VimNotConfigured,
     ("{where}: {exc} Add cloud '{cloud}' to clouds.yaml (OS_CLIENT_CONFIG_FILE), or point the MEC host at "
     "a cloud it defines.")),
    ((os_exc.SDKException, ksa_exc.ClientException), None, VimError,
     "{where} failed: {exc}; check the VIM's logs."),
)


def vim_error(cloud: str, action: str, exc: Exception) -> VimError | None:
    """The VIM error an openstacksdk/keystoneauth failure of ``action`` becomes; None for other errors."""
    for kinds, applies, error, template in _RULES:
        if isinstance(exc, kinds) and (applies is None or applies(exc)):
            return error(template.format(where=f"{action} at VIM '{cloud}'", cloud=cloud, exc=exc,
                                         message=_message(exc), status=getattr(exc, "status_code", None)))
    return None


@contextlib.contextmanager
def translated(cloud: str, action: str) -> Iterator[None]:
    """Turn openstacksdk/keystoneauth failures of ``action`` into meao's VIM errors."""
    try:
        yield
    except VimError:
        raise
    except Exception as exc:
        error = vim_error(cloud, action, exc)
        if error is None:
            raise
        raise error from exc
