"""The URIs of meao's resources as the APIs spell them (``_links`` hrefs and ``Location`` headers).

``base`` is the scheme and authority a client reached meao at (the request's host URL, or
``public_url`` for notifications and the worker's grant requests).
"""

from __future__ import annotations

# the APIs' names: the first segment of their paths (and, for the Mm1 APIs, ``Subscription.api``)
APP_PKGM, APP_LCM, GRANTING, OPS = "app_pkgm", "app_lcm", "granting", "ops"


def api_root(base: str, api: str) -> str:
    """The root of one API, e.g. ``https://meao.example/app_lcm/v1``."""
    return f"{base.rstrip('/')}/{api}/v1"


def link(href: str) -> dict[str, str]:
    """A LinkType (MEC 010-2 clause 6.2.5.2)."""
    return {"href": href}


def app_package_href(base: str, pkg_id: str) -> str:
    """An individual application package (clause 7.3.2)."""
    return f"{api_root(base, APP_PKGM)}/app_packages/{pkg_id}"


def app_instance_href(base: str, instance_id: str) -> str:
    """An individual application instance (clause 7.4.2)."""
    return f"{api_root(base, APP_LCM)}/app_instances/{instance_id}"


def op_occ_href(base: str, op_id: str) -> str:
    """An individual application LCM operation occurrence (clause 7.4.10)."""
    return f"{api_root(base, APP_LCM)}/app_lcm_op_occs/{op_id}"


def subscriptions_href(base: str, api: str) -> str:
    """The subscriptions of ``api`` (app_pkgm: clause 7.3.3, app_lcm: clause 7.4.3)."""
    return f"{api_root(base, api)}/subscriptions"


def subscription_href(base: str, api: str, subscription_id: str) -> str:
    """An individual subscription of ``api`` (clauses 7.3.4, 7.4.4)."""
    return f"{subscriptions_href(base, api)}/{subscription_id}"


def grants_href(base: str) -> str:
    """The grants collection, where the MEPM-V requests grants (clause 7.5.1)."""
    return f"{api_root(base, GRANTING)}/grants"


def grant_href(base: str, grant_id: str) -> str:
    """An individual grant (clause 7.5.2)."""
    return f"{grants_href(base)}/{grant_id}"


def mec_host_href(base: str, host_id: str) -> str:
    """A MEC host of the inventory (openapi/ops.yaml)."""
    return f"{api_root(base, OPS)}/mec_hosts/{host_id}"
