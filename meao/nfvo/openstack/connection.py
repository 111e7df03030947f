"""Connections to one ``clouds.yaml`` entry, whose requests carry the op occurrence's request id."""

from __future__ import annotations

import openstack
from openstack.config import loader

from meao.logs import openstack_request_id

ADMIN_CLOUD_KEY = "meao_admin_cloud"  # a clouds.yaml entry's key naming the entry for privileged calls


def connect(cloud: str, config_file: str | None = None) -> openstack.connection.Connection:
    """A connection for ``cloud`` of ``config_file`` (openstacksdk's default search path when None)."""
    config = loader.OpenStackConfig(config_files=[config_file]) if config_file else loader.OpenStackConfig()
    return _TracedConnection(config=config.get_one(cloud=cloud))


class _TracedConnection(openstack.connection.Connection):
    """A shared connection whose requests carry the op occurrence bound in the calling thread.

    openstacksdk sends ``_global_request_id`` as ``X-OpenStack-Request-ID``; reading it from the logging
    context (a context variable, so per thread) keeps one connection safe for concurrent jobs.
    """

    @property  # type: ignore[override]
    def _global_request_id(self) -> str | None:
        return openstack_request_id()

    @_global_request_id.setter
    def _global_request_id(self, _value: str | None) -> None:
        pass  # the constructor assigns None; the bound op id decides
