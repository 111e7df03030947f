"""The OpenStack driver of :class:`meao.nfvo.vim.Vim`, on openstacksdk: one class per ``clouds.yaml`` entry.

Each OpenStack service has its own module (images, compute, network, security groups, inventory); this class joins them
over one set of connections held for its lifetime. Every OpenStack failure leaves the driver as a
:class:`meao.nfvo.vim.VimError` subclass (see :mod:`meao.nfvo.openstack.sdk_errors`).
"""

from __future__ import annotations

from meao.config import get_settings
from meao.nfvo.openstack.compute import Compute
from meao.nfvo.openstack.connection import ADMIN_CLOUD_KEY, connect
from meao.nfvo.openstack.images import Images
from meao.nfvo.openstack.inventory import Inventory
from meao.nfvo.openstack.network import Network
from meao.nfvo.openstack.notifications import NOTIFICATION_URL_KEY, NovaNotifications
from meao.nfvo.openstack.sdk_errors import translated
from meao.nfvo.openstack.security_groups import SecurityGroups
from meao.nfvo.server_watch import ServerWatch
from meao.nfvo.vim import Vim


class OpenStackVim(Images, Compute, Network, SecurityGroups, Inventory, Vim):
    """A PoP's OpenStack, reached through one ``clouds.yaml`` entry."""

    def __init__(self, cloud_name: str, config_file: str | None = None) -> None:
        self.cloud_name = cloud_name
        # Waits poll adaptively: the first round after poll_min_s, later ones at a tenth of the wait's
        # age, at most poll_s apart (MEAO_VIM_POLL_MIN_S, MEAO_VIM_POLL_S); with Nova's notifications
        # (the entry's meao_notification_url) the poll is only the safety net.
        vim = get_settings().vim
        self.poll_s, self.poll_min_s = vim.poll_s, vim.poll_min_s
        self._events: NovaNotifications | None = None
        with translated(cloud_name, "connecting"):
            self._conn = connect(cloud_name, config_file)
            events_url = self._conn.config.config.get(NOTIFICATION_URL_KEY)
            self._watch = ServerWatch(self._conn, self.poll_s, self.poll_min_s,  # one poll for all waiting jobs
                                      events_live=lambda: self._events is not None and self._events.live)
            if events_url:
                self._events = NovaNotifications(events_url, self._watch.event, cloud_name).start()
            admin_cloud = self._conn.config.config.get(ADMIN_CLOUD_KEY)
            self._admin = connect(admin_cloud, config_file) if admin_cloud else self._conn
        self._network_ids = {}  # network name or id -> id, dropped when a port create 404s

    def close(self) -> None:
        """Stop reading the cloud's notifications (the connections close with the process)."""
        if self._events is not None:
            self._events.stop()

    @property
    def project_id(self) -> str:
        """The project this entry's credentials are scoped to."""
        with self._do("reading the project"):
            return self._conn.current_project_id
