"""A MEC application's side of Mp1, as the software in its VM would do it.

It reads its credentials where a VM finds them, in its boot data: the cloud-config the MEPM-V put in the
server's Nova user_data (read here through the Nova API, as the metadata service would serve it), gets an
Mp1 token from the MEP with them, and calls MEC 011 with it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import yaml


def boot_credentials(os_conn: Any, server_id: str) -> dict[str, Any]:
    """The Mp1 credentials in a server's user_data (the file cloud-init writes to /etc/meao/mp1.json)."""
    resp = os_conn.compute.get(f"/servers/{server_id}", microversion="2.3")
    resp.raise_for_status()
    encoded = resp.json()["server"]["OS-EXT-SRV-ATTR:user_data"]
    cloud_config = yaml.safe_load(base64.b64decode(encoded).decode())
    (entry,) = [f for f in cloud_config["write_files"] if f["path"] == "/etc/meao/mp1.json"]
    return json.loads(entry["content"])


class Mp1App:
    """One app instance talking Mp1 with its own token."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.creds = credentials
        self.id = credentials["appInstanceId"]
        self.support = credentials["mecAppSupportUri"]
        self.services = credentials["mecServiceMgmtUri"]
        self.http = httpx.Client(timeout=30)
        self.token = self.new_token()

    def new_token(self) -> str:
        resp = self.http.post(self.creds["tokenEndpoint"], data={"grant_type": "client_credentials"},
                              auth=(self.creds["clientId"], self.creds["clientSecret"]))
        resp.raise_for_status()
        return resp.json()["access_token"]

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)

    def app_url(self, path: str) -> str:
        return f"{self.support}/applications/{self.id}/{path}"

    def subscribe_termination(self, callback: str) -> httpx.Response:
        return self.call("POST", self.app_url("subscriptions"), json={
            "subscriptionType": "AppTerminationNotificationSubscription", "callbackReference": callback,
            "appInstanceId": self.id})

    def confirm_termination(self, action: str) -> httpx.Response:
        return self.call("POST", self.app_url("confirm_termination"), json={"operationAction": action})

    def confirm_ready(self) -> httpx.Response:
        return self.call("POST", self.app_url("confirm_ready"), json={"indication": "READY"})

    def set_dns_state(self, rule_id: str, state: str) -> httpx.Response:
        current = self.call("GET", self.app_url(f"dns_rules/{rule_id}"))
        current.raise_for_status()
        return self.call("PUT", self.app_url(f"dns_rules/{rule_id}"), json=dict(current.json(), state=state),
                         headers={"If-Match": current.headers["ETag"]})

    def register_service(self, info: dict[str, Any]) -> httpx.Response:
        return self.call("POST", f"{self.services}/applications/{self.id}/services", json=info)

    def discover(self, **params: Any) -> httpx.Response:
        return self.call("GET", f"{self.services}/services", params=params)
