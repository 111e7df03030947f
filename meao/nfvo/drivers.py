"""Which VIM driver serves a MEC host's cloud: a choice of configuration (``MEAO_VIM_DRIVER``).

Callers ask :func:`get_vim` and speak only the :class:`meao.nfvo.vim.Vim` interface; they never import a
driver. ``openstack`` (the default) drives the PoP's OpenStack through its ``clouds.yaml`` entry;
``fake`` keeps a PoP in memory (:mod:`meao.nfvo.fake`), for tests and demos without a cloud.
"""

from __future__ import annotations

import threading

from meao.config import get_settings
from meao.nfvo.vim import Vim

_vims: dict[tuple[str, str, str | None], Vim] = {}
_vims_lock = threading.Lock()


def _make(driver: str, cloud_name: str, config_file: str | None) -> Vim:
    if driver == "fake":
        from meao.nfvo.fake import FakeVim

        return FakeVim(cloud_name=cloud_name)
    from meao.nfvo.openstack.driver import OpenStackVim

    return OpenStackVim(cloud_name, config_file)


def get_vim(cloud_name: str, config_file: str | None = None) -> Vim:
    """The one driver of this process for a cloud (a ``clouds.yaml`` entry; connections reused)."""
    driver = get_settings().vim.driver
    key = (driver, cloud_name, config_file)
    with _vims_lock:
        vim = _vims.get(key)
        if vim is None:
            vim = _vims[key] = _make(driver, cloud_name, config_file)
        return vim


def forget_vims() -> None:
    """Drop the cached drivers (after clouds.yaml changed, and between tests)."""
    with _vims_lock:
        for vim in _vims.values():
            close = getattr(vim, "close", None)  # the OpenStack driver's notification reader
            if close is not None:
                close()
        _vims.clear()
