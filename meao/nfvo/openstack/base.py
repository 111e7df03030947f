"""What every part of the OpenStack driver shares: the cloud's connections and the error translation."""

from __future__ import annotations

import contextlib
from typing import Any

from meao.nfvo.openstack.sdk_errors import translated
from meao.nfvo.server_watch import ServerWatch

ALL_FLAVORS = "none"  # Nova lists private flavors too (for admins) only when asked with "none"


class CloudParts:
    """One ``clouds.yaml`` entry's connections; the service mixins of :class:`OpenStackVim` build on it.

    ``_conn`` runs project-scoped work with the entry's own credentials; ``_admin`` the privileged
    calls, with the entry its ``meao_admin_cloud`` key names (or the same credentials).
    """

    cloud_name: str
    poll_s: float
    poll_min_s: float
    _conn: Any
    _admin: Any
    _watch: ServerWatch
    _network_ids: dict[str, str]

    def _do(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translated(self.cloud_name, action)
