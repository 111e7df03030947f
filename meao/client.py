"""A small client of meao's own Mm1 APIs (MEC 010-2 clauses 7.3 and 7.4), used by the OSS CLI.

``MeaoClient`` speaks HTTP to ``<endpoint>/app_pkgm/v1`` and ``<endpoint>/app_lcm/v1``. Its verb-named
helpers (``create_package``, ``upload_package``, ``instantiate``, ``wait_op`` …) build the request bodies,
so the camelCase of the ETSI request types lives here; responses are returned as the API sends them
(AppPkgInfo, AppInstanceInfo, AppLcmOpOcc …), because the CLI prints them with their wire names.

Every failure is one of four exceptions, all ``ClientError``:

- ``ClientProblem``: the MEAO answered with an error status (its ProblemDetails in ``problem``);
- ``EndpointUnreachable``: no HTTP answer from the endpoint (refused, DNS, timeout, bad URL);
- ``OperationFailed``: a followed onboarding or LCM operation ended in failure;
- ``WaitTimeout``: a followed operation had not ended when the caller stopped waiting.

Where the endpoint comes from (``resolve_endpoint``): an explicit URL > an explicit profile > the
``MEAO_ENDPOINT`` variable > the profile named by ``MEAO_PROFILE`` > ``endpoint`` at the top of
``$XDG_CONFIG_HOME/meao/client.yaml`` (default ``~/.config/meao/client.yaml``) > ``http://127.0.0.1:8080``.
The file::

    endpoint: http://meao.example:8080   # used when no profile is selected
    timeout: 30                          # seconds per HTTP request
    profiles:                            # like the clouds of an OpenStack clouds.yaml
      lab: {endpoint: "http://10.0.0.5:8080", timeout: 60}

Requests carry an access token got with the client credentials grant from ``MEAO_CLIENT_ID`` /
``MEAO_CLIENT_SECRET``, ``MEAO_CLIENT_CREDENTIALS_FILE`` or ``<MEAO_DATA_DIR>/admin-credentials.json``
(``meao.auth.client_credentials``); the token is reused until it expires and renewed once on a 401.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx
import yaml

from meao.auth.client_credentials import CredentialsError, client_auth

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 30.0
PKGM = "/app_pkgm/v1"
LCM = "/app_lcm/v1"
OPS = "/ops/v1"
UPLOAD_CHUNK = 1024 * 1024

#: subscription types of each API (MEC 010-2 clauses 6.2.3.9.2 and 6.2.2.20.2)
SUBSCRIPTION_TYPES: dict[str, tuple[str, ...]] = {
    "pkgm": ("AppPackageOnBoardingSubscription", "AppPackageChangeSubscription",
             "AppPackageDeletionSubscription"),
    "lcm": ("AppInstanceStateChangeSubscription", "AppLcmOpOccStateChangeSubscription",
            "AppIdentifierCreationSubscription", "AppIdentifierDeletionSubscription"),
}
#: operationState values after which an operation occurrence no longer runs by itself (clause 6.2.2.13)
OP_STOPPED_STATES = ("COMPLETED", "FAILED", "FAILED_TEMP")


# ----------------------------------------------------------------------------------------- errors
class ClientError(Exception):
    """Base of every error this client raises."""


class ClientProblem(ClientError):
    """The MEAO answered ``status`` with a ProblemDetails (RFC 7807, MEC 009 clause 7.11)."""

    def __init__(self, status: int, problem: dict[str, Any], url: str = "") -> None:
        self.status = status
        self.problem = problem
        self.url = url
        super().__init__(f"{self.title} (HTTP {status}): {self.detail}")

    @property
    def title(self) -> str:
        """The problem's short summary."""
        return str(self.problem.get("title") or httpx.codes.get_reason_phrase(self.status) or "Error")

    @property
    def detail(self) -> str:
        """What happened, as the MEAO explains it."""
        return str(self.problem.get("detail") or "")


class EndpointUnreachable(ClientError):
    """No HTTP answer came from the endpoint; ``reason`` says what the transport saw."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {url}: {reason}")


class OperationFailed(ClientError):
    """An onboarding or LCM operation that was followed ended in failure; ``problem`` says why."""

    def __init__(self, kind: str, resource: dict[str, Any], problem: dict[str, Any]) -> None:
        self.kind = kind
        self.resource = resource
        self.problem = problem
        super().__init__(f"{kind} {resource.get('id')} failed: {problem.get('detail') or problem.get('title')}")


class WaitTimeout(ClientError):
    """The caller stopped waiting; ``resource`` is the last state seen (the operation goes on)."""

    def __init__(self, kind: str, resource: dict[str, Any], waited: float) -> None:
        self.kind = kind
        self.resource = resource
        self.waited = waited
        super().__init__(f"{kind} {resource.get('id')} had not ended after {waited:.0f}s")


# ---------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Endpoint:
    """Where the client talks to, and where that choice came from (for error messages)."""

    url: str
    timeout: float
    source: str


class ConfigError(ClientError):
    """The client configuration file or the selected profile is unusable."""


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/meao/client.yaml``, by default ``~/.config/meao/client.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "meao" / "client.yaml"


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping with 'endpoint' and/or 'profiles'")
    return data


def resolve_endpoint(url: str | None = None, profile: str | None = None,
                     timeout: float | None = None) -> Endpoint:
    """Pick the endpoint: explicit ``url`` > explicit ``profile`` > environment > config file > default.

    The config file is read only when the endpoint or the timeout may come from it, so a broken file
    does not stop ``--os-endpoint URL`` or ``MEAO_ENDPOINT`` from working.
    """
    env_url, env_profile = os.environ.get("MEAO_ENDPOINT") or None, os.environ.get("MEAO_PROFILE") or None
    path = config_path()
    name = profile or (None if url or env_url else env_profile)
    config = _read_config(path) if name or not (url or env_url) else {}
    chosen: dict[str, Any] = {}
    if name:
        profiles = config.get("profiles") or {}
        if not isinstance(profiles, dict) or not isinstance(profiles.get(name), dict):
            known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
            origin = "--os-profile" if profile else "MEAO_PROFILE"
            raise ConfigError(f"profile {name!r} ({origin}) is not defined in {path} (profiles: {known})")
        chosen = profiles[name]
    if url:
        found, source = url, "--os-endpoint"
    elif profile and chosen.get("endpoint"):
        found, source = chosen["endpoint"], f"profile {profile!r} of {path}"
    elif env_url:
        found, source = env_url, "MEAO_ENDPOINT"
    elif chosen.get("endpoint"):
        found, source = chosen["endpoint"], f"profile {name!r} (MEAO_PROFILE) of {path}"
    elif config.get("endpoint"):
        found, source = config["endpoint"], str(path)
    else:
        found, source = DEFAULT_ENDPOINT, "the default (no --os-endpoint, MEAO_ENDPOINT or config file)"
    if timeout is None:
        raw = chosen.get("timeout") or config.get("timeout") or DEFAULT_TIMEOUT
        try:
            timeout = float(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"timeout {raw!r} in {path} is not a number of seconds") from exc
    return Endpoint(url=str(found).rstrip("/"), timeout=timeout, source=source)


# ------------------------------------------------------------------------------------------ client
def file_digest(path: Path, algorithm: str = "SHA-256") -> str:
    """Hex digest of a file, read in chunks (``SHA-256`` / ``SHA-512`` as named by NFV-SOL 004)."""
    hasher = hashlib.new(algorithm.replace("-", "").lower())
    with path.open("rb") as fh:
        while chunk := fh.read(UPLOAD_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def read_manifest_metadata(path: Path) -> dict[str, str]:
    """The metadata block (MEC 037 table 6.2.2-1) of the manifest at the root of a package zip; {} if none."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifests = [n for n in zf.namelist() if "/" not in n and n.endswith(".mf")]
            if len(manifests) != 1:
                return {}
            with zf.open(manifests[0]) as fh:
                text = fh.read(64 * 1024).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return {}
    meta: dict[str, str] = {}
    for line in text.splitlines()[1:] if text.startswith("metadata:") else []:
        if not line.strip():
            break  # the metadata block ends at the first blank line
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def _id_from(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def _problem_of(resp: httpx.Response) -> dict[str, Any]:
    ctype = resp.headers.get("content-type", "")
    if "json" in ctype:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
    snippet = " ".join(resp.text.split())[:200] if resp.text else ""
    return {"title": resp.reason_phrase or "Error", "status": resp.status_code,
            "detail": f"unexpected HTTP {resp.status_code} answer ({ctype or 'no content type'}) from "
                      f"{resp.request.url}: {snippet or 'empty body'}; is this endpoint a MEAO?"}


class MeaoClient:
    """Verb-named calls on the Mm1 package management and lifecycle management APIs of one MEAO."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None, auth: httpx.Auth | None | str = "env") -> None:
        """``auth`` "env": a token from the client credentials the environment names (see
        ``meao.auth.client_credentials``), or none without them; None: never a token."""
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        if auth == "env":
            try:
                auth = client_auth(self.endpoint)
            except CredentialsError as exc:
                raise ConfigError(str(exc)) from exc
        self.auth = auth if isinstance(auth, httpx.Auth) else None
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport, auth=self.auth,
                                  headers={"Accept": "application/json"})

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- transport
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request to ``endpoint + path``; raise ``ClientProblem`` for 4xx/5xx answers."""
        url = self.endpoint + path
        try:
            resp = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise EndpointUnreachable(url, f"no answer within {self.timeout:g}s ({type(exc).__name__}); "
                                           "the MEAO may be overloaded, or raise --timeout") from exc
        except httpx.UnsupportedProtocol as exc:
            raise EndpointUnreachable(url, "the endpoint must be an http:// or https:// URL") from exc
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise EndpointUnreachable(url, str(exc) or type(exc).__name__) from exc
        except CredentialsError as exc:
            raise ClientProblem(exc.status or 401, {"title": "Token request refused", "detail": str(exc)},
                                url) from exc
        if resp.status_code == 401 and self.auth is None:
            problem = _problem_of(resp)
            problem["detail"] = (f"{problem.get('detail') or 'the MEAO wants an access token'}; give the CLI "
                                 "client credentials: MEAO_CLIENT_ID and MEAO_CLIENT_SECRET, or "
                                 "MEAO_CLIENT_CREDENTIALS_FILE (default <MEAO_DATA_DIR>/admin-credentials.json)")
            raise ClientProblem(401, problem, url)
        if resp.status_code >= 400:
            raise ClientProblem(resp.status_code, _problem_of(resp), url)
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @staticmethod
    def wait_for(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], *, kind: str,
                 timeout: float | None, on_poll: Callable[[dict[str, Any], float], None] | None = None,
                 interval: float = 0.25, max_interval: float = 2.0) -> dict[str, Any]:
        """Poll ``fetch()`` until ``done(resource)``; ``on_poll(resource, elapsed)`` after each read.

        ``timeout`` None waits forever; otherwise ``WaitTimeout`` carries the last resource read.
        """
        start = time.monotonic()
        while True:
            resource = fetch()
            elapsed = time.monotonic() - start
            if on_poll is not None:
                on_poll(resource, elapsed)
            if done(resource):
                return resource
            if timeout is not None and elapsed >= timeout:
                raise WaitTimeout(kind, resource, elapsed)
            time.sleep(interval)
            interval = min(interval * 1.5, max_interval)

    # --------------------------------------------------------------------- application packages
    def list_packages(self, filter_: str | None = None) -> list[dict[str, Any]]:
        """GET /app_packages (clause 7.3.1.3.2), optionally with a MEC 009 filter expression."""
        return self._json("GET", f"{PKGM}/app_packages", params={"filter": filter_} if filter_ else None)

    def get_package(self, pkg_id: str) -> dict[str, Any]:
        """GET /app_packages/{id}: the AppPkgInfo."""
        return self._json("GET", f"{PKGM}/app_packages/{pkg_id}")

    def create_package(self, name: str, version: str, path: str, checksum: str, algorithm: str = "SHA-256",
                       provider: str | None = None,
                       user_defined_data: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /app_packages with a CreateAppPkg (clause 6.2.3.2); the MEAO then fetches ``path``."""
        body: dict[str, Any] = {"appPkgName": name, "appPkgVersion": version, "appPkgPath": path,
                                "checksum": {"algorithm": algorithm, "hash": checksum}}
        if provider:
            body["appProvider"] = provider
        if user_defined_data:
            body["userDefinedData"] = user_defined_data
        return self._json("POST", f"{PKGM}/app_packages", json=body)

    def set_package_state(self, pkg_id: str, state: str) -> dict[str, Any]:
        """PATCH /app_packages/{id} with AppPkgInfoModifications: ``ENABLED`` or ``DISABLED``."""
        return self._json("PATCH", f"{PKGM}/app_packages/{pkg_id}", json={"operationalState": state})

    def delete_package(self, pkg_id: str) -> None:
        """DELETE /app_packages/{id} (the package must be DISABLED and NOT_IN_USE once onboarded)."""
        self.request("DELETE", f"{PKGM}/app_packages/{pkg_id}")

    def upload_package(self, pkg_id: str, path: Path,
                       progress_cb: Callable[[int, int], None] | None = None) -> None:
        """PUT /app_packages/{id}/package_content, streaming ``path``; ``progress_cb(sent, total)``."""
        total = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as fh:
                while chunk := fh.read(UPLOAD_CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress_cb is not None:
                        progress_cb(sent, total)

        # with Content-Length given, httpx streams the iterator without chunked transfer encoding
        self.request("PUT", f"{PKGM}/app_packages/{pkg_id}/package_content", content=chunks(),
                     headers={"Content-Type": "application/zip", "Content-Length": str(total)})

    def wait_package(self, pkg_id: str, *, timeout: float | None,
                     on_poll: Callable[[dict[str, Any], float], None] | None = None) -> dict[str, Any]:
        """Follow onboarding until ONBOARDED; ``OperationFailed`` once onboardingFailureDetails appears."""
        info = self.wait_for(lambda: self.get_package(pkg_id), onboarding_ended, kind="onboarding of package",
                             timeout=timeout, on_poll=on_poll)
        if info.get("onboardingFailureDetails"):
            raise OperationFailed("onboarding of package", info, info["onboardingFailureDetails"])
        return info

    # -------------------------------------------------------------------- application instances
    def list_apps(self, filter_: str | None = None) -> list[dict[str, Any]]:
        """GET /app_instances (clause 7.4.1.3.2)."""
        return self._json("GET", f"{LCM}/app_instances", params={"filter": filter_} if filter_ else None)

    def get_app(self, app_id: str) -> dict[str, Any]:
        """GET /app_instances/{id}: the AppInstanceInfo."""
        return self._json("GET", f"{LCM}/app_instances/{app_id}")

    def create_app(self, appd_id: str, name: str | None = None, description: str | None = None) -> dict[str, Any]:
        """POST /app_instances with a CreateAppInstanceRequest (clause 6.2.2.3)."""
        body: dict[str, Any] = {"appDId": appd_id}
        if name:
            body["appInstanceName"] = name
        if description:
            body["appInstanceDescription"] = description
        return self._json("POST", f"{LCM}/app_instances", json=body)

    def delete_app(self, app_id: str) -> None:
        """DELETE /app_instances/{id} (only a NOT_INSTANTIATED instance)."""
        self.request("DELETE", f"{LCM}/app_instances/{app_id}")

    def _task(self, app_id: str, task: str, body: dict[str, Any]) -> str:
        resp = self.request("POST", f"{LCM}/app_instances/{app_id}/{task}", json=body)
        return _id_from(resp.headers.get("Location", ""))

    def instantiate(self, app_id: str, hosts: list[str], served_area: str | None = None) -> str:
        """POST …/instantiate (InstantiateAppRequest, clause 6.2.2.7); returns the op occurrence id.

        ``served_area`` is meao's ``servedArea`` extension: the cell or tracking area of the users.
        """
        body: dict[str, Any] = {"selectedMECHostInfo": [{"hostId": {"id": host}} for host in hosts]}
        if served_area:
            body["servedArea"] = served_area
        return self._task(app_id, "instantiate", body)

    def operate(self, app_id: str, state: str, graceful_timeout: int | None = None) -> str:
        """POST …/operate (OperateAppRequest, clause 6.2.2.8): a stop is GRACEFUL with a timeout, else FORCEFUL."""
        body: dict[str, Any] = {"changeStateTo": state}
        if state == "STOPPED":
            body["stopType"] = "GRACEFUL" if graceful_timeout is not None else "FORCEFUL"
            if graceful_timeout is not None:
                body["gracefulStopTimeout"] = graceful_timeout
        return self._task(app_id, "operate", body)

    def terminate(self, app_id: str, graceful_timeout: int | None = None) -> str:
        """POST …/terminate (TerminateAppRequest, clause 6.2.2.9): GRACEFUL with a timeout, else FORCEFUL."""
        body: dict[str, Any] = {"terminationType": "GRACEFUL" if graceful_timeout is not None else "FORCEFUL"}
        if graceful_timeout is not None:
            body["gracefulTerminationTimeout"] = graceful_timeout
        return self._task(app_id, "terminate", body)

    def instance_hosts(self, app_ids: set[str] | None = None) -> dict[str, list[str]]:
        """MEC host ids named by the last completed INSTANTIATE of each instance (from its operationParams).

        The AppInstanceInfo does not carry the host; when an instantiate named several candidates the
        MEAO chose one of them, so more than one id means "one of these".
        """
        ops = self._json("GET", f"{LCM}/app_lcm_op_occs",
                         params={"filter": "(eq,lcmOperation,INSTANTIATE);(eq,operationState,COMPLETED)",
                                 "fields": "operationParams"})
        hosts: dict[str, list[str]] = {}
        for op in sorted(ops, key=lambda o: (o.get("startTime") or {}).get("seconds", 0)):
            app_id = op.get("appInstanceId")
            if not app_id or (app_ids is not None and app_id not in app_ids):
                continue
            selected = (op.get("operationParams") or {}).get("selectedMECHostInfo") or []
            hosts[app_id] = [str((h.get("hostId") or {}).get("id") or h.get("hostName") or "?") for h in selected]
        return hosts

    # ---------------------------------------------------------------------- LCM op occurrences
    def list_ops(self, app_id: str | None = None) -> list[dict[str, Any]]:
        """GET /app_lcm_op_occs (clause 7.4.9.3.2), optionally of one application instance."""
        params = {"filter": f"(eq,appInstanceId,{app_id})"} if app_id else None
        return self._json("GET", f"{LCM}/app_lcm_op_occs", params=params)

    def get_op(self, op_id: str) -> dict[str, Any]:
        """GET /app_lcm_op_occs/{id}: the AppLcmOpOcc."""
        return self._json("GET", f"{LCM}/app_lcm_op_occs/{op_id}")

    def retry_op(self, op_id: str) -> None:
        """POST …/retry (clause 7.4.13): a FAILED_TEMP operation continues."""
        self.request("POST", f"{LCM}/app_lcm_op_occs/{op_id}/retry")

    def fail_op(self, op_id: str) -> dict[str, Any]:
        """POST …/fail (clause 7.4.12): a FAILED_TEMP operation becomes FAILED; returns the AppLcmOpOcc."""
        return self._json("POST", f"{LCM}/app_lcm_op_occs/{op_id}/fail")

    def cancel_op(self, op_id: str, mode: str = "GRACEFUL") -> None:
        """POST …/cancel with CancelMode (clause 7.4.11): ``GRACEFUL`` or ``FORCEFUL``."""
        self.request("POST", f"{LCM}/app_lcm_op_occs/{op_id}/cancel", json={"cancelMode": mode})

    def wait_op(self, op_id: str, *, timeout: float | None,
                on_poll: Callable[[dict[str, Any], float], None] | None = None) -> dict[str, Any]:
        """Follow an op occurrence until it stops; ``OperationFailed`` unless it is COMPLETED."""
        op = self.wait_for(lambda: self.get_op(op_id), lambda o: o.get("operationState") in OP_STOPPED_STATES,
                           kind="operation", timeout=timeout, on_poll=on_poll)
        if op.get("operationState") != "COMPLETED":
            problem = op.get("error") or {"title": f"operation {op.get('operationState')}",
                                          "detail": f"operation {op_id} ended {op.get('operationState')}"}
            raise OperationFailed(f"{op.get('lcmOperation', 'LCM').lower()} operation", op, problem)
        return op

    # ---------------------------------------------------------------------------- subscriptions
    @staticmethod
    def api_of(subscription_type: str) -> str:
        """``pkgm`` or ``lcm``: the API a subscription type belongs to."""
        for api, types in SUBSCRIPTION_TYPES.items():
            if subscription_type in types:
                return api
        raise ValueError(f"unknown subscription type {subscription_type!r}")

    @staticmethod
    def _root(api: str) -> str:
        return {"pkgm": PKGM, "lcm": LCM}[api]

    def list_subscriptions(self, api: str, subscription_type: str | None = None) -> list[dict[str, Any]]:
        """GET /subscriptions of one API, flattened to ``{id, subscriptionType, href}`` per link."""
        params = {"subscription_type": subscription_type} if subscription_type else None
        links = self._json("GET", f"{self._root(api)}/subscriptions", params=params)
        return [{"id": _id_from(link["href"]), "subscriptionType": link.get("subscriptionType"),
                 "href": link["href"]} for link in (links.get("_links") or {}).get("subscriptions") or []]

    def get_subscription(self, api: str, sub_id: str) -> dict[str, Any]:
        """GET /subscriptions/{id}: the *SubscriptionInfo."""
        return self._json("GET", f"{self._root(api)}/subscriptions/{sub_id}")

    def create_subscription(self, subscription_type: str, callback_uri: str,
                            filter_: dict[str, Any] | list[Any] | None = None) -> dict[str, Any]:
        """POST /subscriptions of the API the type belongs to; ``filter_`` goes in the type's filter member."""
        api = self.api_of(subscription_type)
        body: dict[str, Any] = {"subscriptionType": subscription_type, "callbackUri": callback_uri}
        if filter_ is not None:
            if api == "pkgm":
                body["appPkgFilter"] = filter_ if isinstance(filter_, list) else [filter_]
            elif subscription_type == "AppLcmOpOccStateChangeSubscription":
                body["appLcmOpOccSubscriptionFilter"] = filter_
            else:
                body["appInstanceSubscriptionFilter"] = filter_
        return self._json("POST", f"{self._root(api)}/subscriptions", json=body)

    def delete_subscription(self, api: str, sub_id: str) -> None:
        """DELETE /subscriptions/{id}."""
        self.request("DELETE", f"{self._root(api)}/subscriptions/{sub_id}")


    # ----------------------------------------------------------------------- MEC hosts (ops API)
    def list_hosts(self) -> list[dict[str, Any]]:
        """GET /ops/v1/mec_hosts."""
        return self._json("GET", f"{OPS}/mec_hosts")

    def get_host(self, host_id: str) -> dict[str, Any]:
        """GET /ops/v1/mec_hosts/{id}."""
        return self._json("GET", f"{OPS}/mec_hosts/{host_id}")

    def put_host(self, host: dict[str, Any]) -> dict[str, Any]:
        """PUT /ops/v1/mec_hosts/{id}: create or replace a MEC host."""
        return self._json("PUT", f"{OPS}/mec_hosts/{host['id']}", json=host)

    def delete_host(self, host_id: str) -> None:
        """DELETE /ops/v1/mec_hosts/{id}."""
        self.request("DELETE", f"{OPS}/mec_hosts/{host_id}")

    def host_capacity(self, host_id: str, refresh: bool = False) -> dict[str, Any]:
        """GET /ops/v1/mec_hosts/{id}/capacity."""
        return self._json("GET", f"{OPS}/mec_hosts/{host_id}/capacity",
                          params={"refresh": "true"} if refresh else None)

    # --------------------------------------------------------------- queues, workers, jobs (ops API)
    def list_queues(self) -> list[dict[str, Any]]:
        """GET /ops/v1/queues."""
        return self._json("GET", f"{OPS}/queues")

    def get_queue(self, name: str) -> dict[str, Any]:
        """GET /ops/v1/queues/{name}: with its waiting jobs."""
        return self._json("GET", f"{OPS}/queues/{quote(name, safe='')}")

    def purge_queue(self, name: str) -> dict[str, Any]:
        """POST /ops/v1/queues/{name}/purge."""
        return self._json("POST", f"{OPS}/queues/{quote(name, safe='')}/purge")

    def list_workers(self) -> list[dict[str, Any]]:
        """GET /ops/v1/workers."""
        return self._json("GET", f"{OPS}/workers")

    def control_worker(self, name: str, action: str) -> dict[str, Any]:
        """POST /ops/v1/workers/{name}/{action} (``drain`` or ``resume``)."""
        return self._json("POST", f"{OPS}/workers/{quote(name, safe='')}/{action}")

    def list_jobs(self, state: str | None = None, queue: str | None = None) -> list[dict[str, Any]]:
        """GET /ops/v1/jobs."""
        params = {k: v for k, v in (("state", state), ("queue", queue)) if v}
        return self._json("GET", f"{OPS}/jobs", params=params or None)


def onboarding_ended(info: dict[str, Any]) -> bool:
    """ONBOARDED, or back in CREATED with onboardingFailureDetails (a failed fetch or processing)."""
    return info.get("onboardingState") == "ONBOARDED" or bool(info.get("onboardingFailureDetails"))
