"""The MEAO side of a lifecycle flow: the records a job keeps in the database, and granting over Mm3.

:class:`JobRecords` is what the runner hands a flow as its :class:`mecpm.flows.MeaoLink`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from meao.auth.client_credentials import CredentialsError, shared_client_auth
from meao.catalogue import vim_images
from meao.config import get_settings
from meao.lcm import grants
from meao.lcm.lifecycle import Lease
from meao.nfvo import image_claims
from meao.nfvo.drivers import get_vim
from meao.nfvo.vim import ImageSpec, OpenStream, Vim
from meao.problems import ProblemError
from meao.wire.links import grants_href


@dataclass(frozen=True)
class JobRecords:
    """The MEAO as one job of one app instance on one cloud sees it."""

    instance_id: str
    package_id: str
    cloud: str
    api_base: str
    lease: Lease  # the job's hold on its attempt: every write below is fenced by it

    def save_resources(self, resources: dict[str, Any]) -> None:
        """Write the instance's resources (the OpenStack ids the steps made), while the lease holds."""
        self.lease.save_resources(self.instance_id, resources)

    def note_graceful(self, outcome: dict[str, Any]) -> None:
        """Keep the MEP's report of a GRACEFUL stop or terminate on the occurrence."""
        self.lease.note_graceful(outcome)

    def check_claim(self) -> None:
        """Raise :class:`meao.lcm.lifecycle.Superseded` when the lease is lost (a fenced heartbeat)."""
        self.lease.heartbeat()

    def ensure_image(self, vim: Vim, spec: ImageSpec, open_stream: OpenStream, appd_sw_image_id: str) -> str:
        """The image's id at ``vim``'s cloud, uploaded by one worker at a time there, noted on the package as
        the realisation of the AppD's software image descriptor ``appd_sw_image_id``."""
        image_id = image_claims.ensure_image(vim, spec, open_stream, self.package_id)
        self.note_image(image_id, vim.cloud_name, appd_sw_image_id)
        return image_id

    def note_image(self, image_id: str, cloud: str | None = None, appd_sw_image_id: str | None = None) -> None:
        """Add the image to the package's images at ``cloud`` (default: the host's), what its deletion releases
        and what grants list in vimAssets."""
        vim_images.note_image(self.package_id, cloud or self.cloud, image_id, appd_sw_image_id)

    def drop_flavor(self, resources: dict[str, Any], flavor_id: str, release: Callable[[], Any]) -> list[str]:
        """Save ``resources`` (the flavor no longer in them); ``release`` first when no other app instance
        names the flavor in its resources (those not booted yet are unknown to Nova). The others that do."""
        return self.lease.drop_shared(self.instance_id, resources, "flavor_id", flavor_id, release)

    def request_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        """The MEAO's Grant: decided in this process when the worker is the MEAO's embedded one (the same
        function the granting API calls, no HTTP round trip to itself), else over the granting API (see
        :func:`request_grant`); MEAO_GRANT_OVER_HTTP forces the API."""
        settings = get_settings()
        if settings.embedded_broker and not settings.jobs.grant_over_http:
            return grants.create_grant(body, self.api_base)
        return request_grant(body, self.api_base)

    def vim_for(self, cloud: str) -> Vim:
        """The VIM driver of a cloud a grant names."""
        return get_vim(cloud)


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _grants_client() -> httpx.Client:
    """One HTTP client per process, its connections kept alive between grants: a new TCP (and TLS)
    connection to the control plane per grant costs a round trip (three with TLS) over the WAN."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(timeout=60)
        return _client


def request_grant(body: dict[str, Any], base: str | None = None) -> dict[str, Any]:
    """POST the GrantRequest to the MEAO's granting API at ``base`` (Mm3, MEC 010-2 clause 7.5.1.3.1)."""
    base = base or get_settings().public_url
    url = grants_href(base)
    try:
        resp = _grants_client().post(url, json=body, auth=shared_client_auth(base))
    except CredentialsError as exc:
        raise ProblemError(f"this worker cannot get an access token for the granting API: {exc}; give it client "
                           "credentials with the granting:write scope (MEAO_CLIENT_ID/MEAO_CLIENT_SECRET or "
                           "MEAO_CLIENT_CREDENTIALS_FILE)", status=503, title="Granting unavailable") from exc
    except httpx.HTTPError as exc:
        raise ProblemError(f"the MEAO granting API at {url} did not answer ({exc}); retry the operation once "
                           "it is reachable", status=503, title="Granting unavailable") from exc
    if resp.status_code == 201:
        return resp.json()
    try:
        answer = resp.json()
    except ValueError:
        answer = {"detail": resp.text[:500]}
    raise ProblemError(f"the MEAO refused the grant: {answer.get('detail')}", status=resp.status_code
                       if resp.status_code >= 400 else 502, title=answer.get("title") or "Grant refused",
                       extra={k: v for k, v in answer.items() if k == "hosts"})
