"""Waiting on Nova against the real test bed: woken by its versioned notifications, by the adaptive poll
when they are lost or not configured, and a deleted server's ports free before a delete returns."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import yaml
from openstack import exceptions as os_exc

from meao.config import get_settings, set_settings
from meao.nfvo.openstack.driver import OpenStackVim
from meao.nfvo.openstack.notifications import NOTIFICATION_URL_KEY
from tests.nfvo.conftest import SESSION_CLOUD

pytestmark = pytest.mark.openstack

BOOT_TIMEOUT = 120


@pytest.fixture
def polls_every(request: pytest.FixtureRequest) -> Iterator[None]:
    """Settings whose adaptive poll runs at the given (min, max) seconds while the test makes its VIM."""
    before = get_settings()
    low, high = request.param
    set_settings(dataclasses.replace(before, vim=dataclasses.replace(before.vim, poll_min_s=low, poll_s=high)))
    yield
    set_settings(before)


def _own_vim(clouds: Path, events: bool = True) -> OpenStackVim:
    """A driver of its own (not the shared one), with or without the entry's notification URL."""
    if not events:
        data = yaml.safe_load(clouds.read_text())
        data["clouds"][SESSION_CLOUD].pop(NOTIFICATION_URL_KEY, None)
        clouds = clouds.with_name("clouds-no-events.yaml")
        clouds.write_text(yaml.safe_dump(data))
    vim = OpenStackVim(SESSION_CLOUD, str(clouds))
    if events:
        assert vim._events is not None and vim._events.wait_live(30), "not reading Nova's notifications"
    return vim


def _boot(vim: OpenStackVim, network: str, instance_id: str, image: str, flavor: str) -> tuple[str, str]:
    port_id = vim.create_port(network, instance_id, "cp1")
    return port_id, vim.create_server(f"meao-{instance_id}", flavor, image, [port_id], instance_id)


@pytest.mark.parametrize("polls_every", [(600.0, 600.0)], indirect=True)
def test_novas_notifications_end_the_waits_for_active_and_gone_without_a_poll(
        polls_every: None, session_clouds: Path, network: str, instance_id: str, boot_image: str,
        small_flavor: str) -> None:
    vim = _own_vim(session_clouds)
    try:
        port_id, server_id = _boot(vim, network, instance_id, boot_image, small_flavor)
        assert vim.wait_server_active(server_id, BOOT_TIMEOUT).status == "ACTIVE"
        vim.delete_server(server_id, wait=True)
        assert vim._watch.polls == 0, "a poll ran: the first round was ten minutes away"
        assert vim._events.received >= 2
        vim.delete_port(port_id)
    finally:
        vim.close()


@pytest.mark.parametrize("polls_every", [(0.05, 0.5)], indirect=True)
def test_a_lost_notification_still_ends_the_wait_by_polling(
        polls_every: None, session_clouds: Path, network: str, instance_id: str, boot_image: str,
        small_flavor: str) -> None:
    vim = _own_vim(session_clouds)
    try:
        vim._events._on_event = lambda *event: None  # every notification lost on the way
        port_id, server_id = _boot(vim, network, instance_id, boot_image, small_flavor)
        assert vim.wait_server_active(server_id, BOOT_TIMEOUT).status == "ACTIVE"
        vim.delete_server(server_id, wait=True)
        assert vim._watch.polls >= 1
        vim.delete_port(port_id)
    finally:
        vim.close()


@pytest.mark.parametrize("polls_every", [(0.05, 1.0)], indirect=True)
def test_without_notifications_the_adaptive_poll_ends_the_waits(
        polls_every: None, session_clouds: Path, network: str, instance_id: str, boot_image: str,
        small_flavor: str) -> None:
    vim = _own_vim(session_clouds, events=False)
    port_id, server_id = _boot(vim, network, instance_id, boot_image, small_flavor)
    assert vim.wait_server_active(server_id, BOOT_TIMEOUT).status == "ACTIVE"
    vim.delete_server(server_id, wait=True)
    assert vim._events is None and vim._watch.polls >= 1
    vim.delete_port(port_id)


def test_a_port_nova_still_binds_to_a_deleted_server_is_deleted_once_released(
        vim: OpenStackVim, member: openstack.connection.Connection, network: str, instance_id: str) -> None:
    """A port Nova still binds to a server it no longer has (a compute host that unbinds late) cannot be
    deleted by the member (403): the driver's delete waits until Neutron shows it released, then deletes."""
    port_id = vim.create_port(network, instance_id, "cp1")
    gone_server = str(uuid.uuid4())  # as Nova leaves it: no such server, its port still bound to it
    member.network.update_port(port_id, device_id=gone_server, device_owner="compute:nova")
    with pytest.raises(os_exc.ForbiddenException):
        member.network.delete_port(port_id)

    vim.delete_server(gone_server, wait=True)  # gone already: returns, the port is the port delete's business
    returned = threading.Event()
    deleting = threading.Thread(target=lambda: (vim.delete_port(port_id), returned.set()))
    deleting.start()
    try:
        assert not returned.wait(1.0), "delete_port returned while the port was still bound to the server"
        assert member.network.get_port(port_id).id == port_id
    finally:
        member.network.update_port(port_id, device_id="", device_owner="")  # the compute host's late unbind
        deleting.join(30)
    assert returned.is_set()
    assert vim.find_ports(instance_id) == []


def test_port_tags_are_sent_in_the_create_call(
        vim: OpenStackVim, member: openstack.connection.Connection, network: str, instance_id: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def second_request(*args: object, **kwargs: object) -> None:
        raise AssertionError("the tags needed a second request after the create")

    monkeypatch.setattr(vim._conn.network, "set_tags", second_request)
    port_id = vim.create_port(network, instance_id, "cp1")
    assert set(member.network.get_port(port_id).tags) == {"meao", f"meao-instance:{instance_id}"}
    vim.delete_port(port_id)
