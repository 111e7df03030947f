"""The one place where openstacksdk and keystoneauth failures become meao's VIM errors (ProblemDetails).

Every message says what failed at which VIM and what the operator can do about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as os_exc

from meao.nfvo.vim import QuotaExceeded, VimError, VimNotConfigured, VimNotFound, VimTimeout, VimUnavailable


def _message(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    return str(details or exc).strip()


def _is_quota(exc: Exception) -> bool:
    text = _message(exc).lower() + str(exc).lower()
    return "quota" in text or getattr(exc, "status_code", None) == 413


@contextlib.contextmanager
def translated(cloud: str, action: str) -> Iterator[None]:
    """Turn openstacksdk/keystoneauth failures of ``action`` into meao's VIM errors."""
    where = f"{action} at VIM '{cloud}'"
    try:
        yield
    except VimError:
        raise
    except os_exc.ResourceTimeout as exc:
        raise VimTimeout(f"{where} timed out ({exc}); the VIM may be overloaded: retry the operation "
                         f"later or raise the timeout.") from exc
    except os_exc.NotFoundException as exc:
        raise VimNotFound(f"{where}: not found ({_message(exc)}); it was deleted outside meao or the "
                          f"id is wrong: re-run the operation so meao recreates or forgets it.") from exc
    except os_exc.HttpException as exc:
        if exc.status_code in (403, 409, 413) and _is_quota(exc):
            raise QuotaExceeded(f"{where} refused: quota exceeded ({_message(exc)}); free resources in "
                                f"the project or ask the PoP operator to raise its quota.") from exc
        if exc.status_code in (502, 503, 504):
            raise VimUnavailable(f"{where}: service unavailable (HTTP {exc.status_code}: "
                                 f"{_message(exc)}); retry when the VIM is back.") from exc
        raise VimError(f"{where} failed: HTTP {exc.status_code}: {_message(exc)}; check the request "
                       f"and the VIM's logs.") from exc
    except (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.DiscoveryFailure) as exc:
        raise VimUnavailable(f"{where}: cannot reach the VIM ({exc}); check its endpoint in "
                             f"clouds.yaml and that its APIs are up.") from exc
    except ksa_exc.Unauthorized as exc:
        raise VimError(f"{where}: authentication failed ({exc}); check the credentials of cloud "
                       f"'{cloud}' in clouds.yaml.") from exc
    except os_exc.ConfigException as exc:
        raise VimNotConfigured(f"{where}: {exc} Add cloud '{cloud}' to clouds.yaml (OS_CLIENT_CONFIG_FILE), "
                               f"or point the MEC host at a cloud it defines.") from exc
    except (os_exc.SDKException, ksa_exc.ClientException) as exc:
        raise VimError(f"{where} failed: {exc}; check the VIM's logs.") from exc
