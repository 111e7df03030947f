"""Reading Nova's versioned notifications (oslo.messaging messagingv2 envelope) into ServerWatch events."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

from meao.nfvo.openstack.notifications import NovaNotifications, kombu_url, server_event
from meao.nfvo.server_watch import Gone, ServerWatch


def _payload(state: str, **data: Any) -> dict[str, Any]:
    return {"nova_object.name": "InstanceActionPayload",
            "nova_object.data": {"uuid": "srv-1", "display_name": "meao-x", "state": state,
                                 "availability_zone": "az1", "metadata": {"meao_instance": "i"}, **data}}


def test_the_end_of_an_action_gives_the_status_its_vm_state_shows() -> None:
    server_id, status, record = server_event("instance.create.end", _payload("active"))
    assert (server_id, status) == ("srv-1", "ACTIVE")
    assert record.name == "meao-x" and record.availability_zone == "az1" and record.fault is None
    assert server_event("instance.power_off.end", _payload("stopped"))[1] == "SHUTOFF"
    assert server_event("instance.delete.end", _payload("deleted")) == ("srv-1", "DELETED", None)


def test_errors_say_something_changed_and_other_phases_and_events_are_left_out() -> None:
    assert server_event("instance.create.error", _payload("building")) == ("srv-1", None, None)
    assert server_event("instance.create.start", _payload("building")) is None
    assert server_event("instance.update", _payload("active")) is None
    assert server_event("flavor.create", {"nova_object.data": {"flavorid": "f"}}) is None


def test_oslo_transport_urls_become_kombu_urls() -> None:
    assert kombu_url("rabbit://guest:guest@127.0.0.1:5672/meaotb") == "amqp://guest:guest@127.0.0.1:5672/meaotb"
    assert kombu_url("rabbit://u:p@h1:5672,u:p@h2:5672/v") == "amqp://u:p@h1:5672/v"


def test_a_message_in_the_oslo_envelope_wakes_the_waiter_of_its_server() -> None:
    """An event settles a waiter registered before it; a status it does not want leaves it waiting."""
    watch = ServerWatch(conn=None, max_s=600, min_s=600, events_live=lambda: True)
    reader = NovaNotifications("rabbit://guest:guest@127.0.0.1:1/none", watch.event)  # never started
    acks: list[bool] = []
    message = SimpleNamespace(ack=lambda: acks.append(True))
    got: list[tuple[bool, Any]] = []
    building = SimpleNamespace(id="srv-1", status="BUILD", updated_at=None)
    waiting = threading.Thread(target=lambda: got.append(
        watch.wait("srv-1", lambda: building, {"ACTIVE"}, {"ERROR", "DELETED"}, 30)))
    waiting.start()
    while not watch._waiters:
        threading.Event().wait(0.01)

    def envelope(event_type: str, state: str) -> dict[str, str]:
        return {"oslo.version": "2.0", "oslo.message": json.dumps(
            {"event_type": event_type, "priority": "INFO", "payload": _payload(state)})}

    reader._handle(envelope("instance.power_on.end", "stopped"), message)  # not a wanted status
    assert waiting.is_alive()
    reader._handle(envelope("instance.delete.end", "deleted"), message)
    waiting.join(10)
    assert got and got[0][0] is True and isinstance(got[0][1], Gone)
    assert acks == [True, True] and reader.received == 2
