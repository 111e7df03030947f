"""The MEPM-V's Mm5 client (openapi/mm5.yaml): HTTP to the MEP of one host, with meao's client credentials."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from meao.auth.client_credentials import CredentialsError, shared_client_auth
from meao.config import get_settings
from meao.problems import ProblemError
from mecpm.mep import MepDriver

POLL_S = 0.1  # how often the MEPM-V reads a graceful stop's state
KEEP_ALIVE_S = 1.0  # how often it proves its claim on the operation meanwhile
_clients: dict[str, httpx.Client] = {}


def _http(base: str) -> httpx.Client:
    client = _clients.get(base)
    if client is None:
        client = _clients[base] = httpx.Client(base_url=base, timeout=30)
    return client


class Mm5Client(MepDriver):
    """Mm5 toward the MEP of ``host_id`` at ``mep_url`` (None: the MEP inside ``meao serve``)."""

    def __init__(self, host_id: str, mep_url: str | None) -> None:
        settings = get_settings()
        self.host_id = host_id
        self.base = (mep_url or settings.public_url).rstrip("/")
        self._token_base = settings.public_url  # meao's token endpoint gives the MEPM-V's own token

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              ok: tuple[int, ...] = (200,)) -> httpx.Response:
        url = f"{self.base}/mm5/v1{path}"
        try:
            resp = _http(self.base).request(method, url, json=body, auth=shared_client_auth(self._token_base))
        except CredentialsError as exc:
            raise ProblemError(f"this worker cannot get an access token for the MEP (Mm5): {exc}; give it client "
                               "credentials with the granting:write scope", status=503,
                               title="MEP unavailable") from exc
        except httpx.HTTPError as exc:
            raise ProblemError(f"the MEP of MEC host {self.host_id} at {self.base} did not answer ({exc}); check "
                               f"that `meao mep serve --host-id {self.host_id}` runs there (or that the host's "
                               "mep_url is right), then retry the operation", status=503,
                               title="MEP unavailable") from exc
        if resp.status_code in ok:
            return resp
        try:
            answer = resp.json()
        except ValueError:
            answer = {"detail": resp.text[:500]}
        raise ProblemError(f"the MEP of MEC host {self.host_id} refused: {answer.get('detail')}",
                           status=resp.status_code if resp.status_code >= 400 else 502,
                           title=answer.get("title") or "MEP refused")

    def issue_credentials(self, instance_id: str) -> dict[str, Any]:
        return self._call("PUT", f"/app_instances/{instance_id}/credentials", {"mecHostId": self.host_id}).json()

    def register(self, instance_id: str, registration: dict[str, Any]) -> dict[str, Any]:
        body = dict(registration, mecHostId=self.host_id)
        return self._call("PUT", f"/app_instances/{instance_id}", body).json()

    def deregister(self, instance_id: str) -> None:
        self._call("DELETE", f"/app_instances/{instance_id}", ok=(204, 404))

    def graceful_termination(self, instance_id: str, action: str, timeout_s: int,
                             keep_alive: Callable[[], None]) -> dict[str, Any]:
        path = f"/app_instances/{instance_id}/graceful_termination"
        resp = self._call("POST", path, {"operationAction": action, "maxGracefulTimeout": int(timeout_s)},
                          ok=(200, 404))
        if resp.status_code == 404:  # not registered at the MEP (e.g. instantiated before the MEP existed)
            return {"state": "NOT_SUBSCRIBED", "operationAction": action, "maxGracefulTimeout": int(timeout_s)}
        state = resp.json()
        checked = time.monotonic()
        while state.get("state") == "NOTIFIED":
            if time.monotonic() - checked >= KEEP_ALIVE_S:
                keep_alive()
                checked = time.monotonic()
            time.sleep(POLL_S)
            state = self._call("GET", path).json()
        return state

    def clear_termination(self, instance_id: str) -> None:
        self._call("DELETE", f"/app_instances/{instance_id}/graceful_termination", ok=(204, 404))


def boot_data(credentials: dict[str, Any]) -> str:
    """The VM's user_data: a cloud-config that writes the app's Mp1 credentials to /etc/meao/mp1.json.

    The app reads that file (or the metadata service's user_data) to find the MEP: its Mp1 endpoints,
    the token endpoint, its client id and secret, and its appInstanceId.
    """
    doc = json.dumps({k: credentials[k] for k in ("appInstanceId", "clientId", "clientSecret", "tokenEndpoint",
                                                  "mecAppSupportUri", "mecServiceMgmtUri")}, indent=2)
    indented = "\n".join("      " + line for line in doc.splitlines())
    return ("#cloud-config\n# meao: this MEC application instance's Mp1 credentials (MEC 011)\n"
            "write_files:\n  - path: /etc/meao/mp1.json\n    permissions: '0600'\n    content: |\n"
            f"{indented}\n")
