"""Nova's versioned notifications, read from a PoP's message bus, as events for the :class:`ServerWatch`.

Nova (``[notifications] notification_format = versioned``, ``[oslo_messaging_notifications] driver =
messagingv2``) publishes every instance action on the topic exchange ``nova`` with the routing key
``versioned_notifications.<priority>``. We bind a queue of our own (exclusive, deleted with the
connection) to that exchange, so every meao process sees every event and none takes them from another
consumer (the shared ``versioned_notifications.info`` queue is left to whoever else reads it). kombu
speaks the wire (it ships with Celery); the oslo.messaging envelope is a JSON string in ``oslo.message``.

Configured per cloud: the ``clouds.yaml`` entry's key ``meao_notification_url`` names the transport
(``rabbit://user:pass@host:5672/vhost``, as in nova.conf). Without it, waits poll. A dropped connection is
re-made with a backoff; while it is down the watch polls as if there were no events.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)

NOTIFICATION_URL_KEY = "meao_notification_url"  # a clouds.yaml entry's key: Nova's notification transport
EXCHANGE = "nova"  # oslo.messaging's control_exchange of Nova
TOPIC = "versioned_notifications"  # [notifications] versioned_notifications_topics

# vm_state in a payload → the status the compute API shows (nova/api/openstack/common.py, the common cases)
_STATUS = {"active": "ACTIVE", "error": "ERROR", "stopped": "SHUTOFF", "deleted": "DELETED",
           "building": "BUILD", "paused": "PAUSED", "suspended": "SUSPENDED", "shelved": "SHELVED",
           "shelved_offloaded": "SHELVED_OFFLOADED", "soft-delete": "SOFT_DELETED", "rescued": "RESCUE",
           "resized": "VERIFY_RESIZE"}

Event = Callable[[str, str | None, Any], None]  # (server id, status or None, record or None)


def kombu_url(url: str) -> str:
    """oslo.messaging's ``rabbit://`` transport URL as kombu wants it (``amqp://``); first host only."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("rabbit", "amqp", "pyamqp"):
        return url
    hosts, slash, vhost = rest.partition("/")
    return f"amqp://{hosts.split(',')[0]}{slash}{vhost}"


def server_event(event_type: str, payload: dict[str, Any]) -> tuple[str, str | None, Any] | None:
    """(server id, status, record) of an ``instance.*`` notification; None for other events.

    Only the end of an action says where the server is: ``instance.delete.end`` → gone;
    ``instance.<action>.end`` → the status its vm_state shows; ``*.error`` → status None (something
    happened: the watch polls now to learn what). Events of other phases are not passed on.
    """
    if not event_type.startswith("instance."):
        return None
    data = payload.get("nova_object.data") or {}
    server_id = data.get("uuid")
    if not server_id:
        return None
    if event_type == "instance.delete.end":
        return server_id, "DELETED", None
    if event_type.endswith(".error"):
        return server_id, None, None
    if not event_type.endswith(".end"):
        return None
    status = _STATUS.get(str(data.get("state") or "").lower())
    if status is None:
        return server_id, None, None
    fault = data.get("fault") or None
    fault_data = (fault or {}).get("nova_object.data") or {}
    record = SimpleNamespace(
        id=server_id, name=data.get("display_name"), status=status, availability_zone=data.get("availability_zone"),
        metadata=data.get("metadata") or {}, updated_at=data.get("updated_at"), task_state=data.get("task_state"),
        fault={"message": fault_data.get("exception_message"), "code": None} if fault_data else None)
    return server_id, status, record


class NovaNotifications:
    """A consumer thread of one cloud's Nova notifications, passing instance events to ``on_event``."""

    def __init__(self, url: str, on_event: Event, name: str = "") -> None:
        self._url = kombu_url(url)
        self._on_event = on_event
        self._name = name
        self._live = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"meao-nova-events-{name}", daemon=True)
        self.received = 0  # instance events passed on (tests and logs)

    def start(self) -> NovaNotifications:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to end (within a second: it drains with a one-second timeout)."""
        self._stop.set()

    @property
    def live(self) -> bool:
        """True while our queue is bound and consumed: events can be trusted to arrive (most of the time)."""
        return self._live.is_set()

    def wait_live(self, timeout: float) -> bool:
        """Block until the consumer is bound (tests; the VIM never waits for it)."""
        return self._live.wait(timeout)

    def _handle(self, body: Any, message: Any) -> None:
        try:
            if isinstance(body, (bytes, str)):
                body = json.loads(body)
            inner = body.get("oslo.message") if isinstance(body, dict) else None
            note = json.loads(inner) if isinstance(inner, str) else (inner or body)
            found = server_event(note.get("event_type") or "", note.get("payload") or {})
            if found is not None:
                self.received += 1
                self._on_event(*found)
        except Exception as exc:  # noqa: BLE001 — one odd message must not stop the consumer
            log.warning("cloud %s: ignoring a Nova notification that could not be read: %s", self._name, exc)
        finally:
            message.ack()

    def _run(self) -> None:
        from kombu import Connection, Consumer, Exchange, Queue, binding

        backoff = 0.5
        queue_name = f"meao-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        while not self._stop.is_set():
            try:
                with Connection(self._url, connect_timeout=5, heartbeat=30) as conn:
                    conn.ensure_connection(max_retries=1)
                    # passive: Nova declared it (durable or not, as its deployment chose); we only bind
                    exchange = Exchange(EXCHANGE, type="topic", passive=True)
                    # one queue, bound twice (kombu keeps one binding per Queue object of a name)
                    queue = Queue(queue_name, bindings=[binding(exchange, routing_key=f"{TOPIC}.{priority}")
                                                        for priority in ("info", "error")],
                                  exclusive=True, auto_delete=True, durable=False)
                    with Consumer(conn, queues=[queue], callbacks=[self._handle], accept=["json"]):
                        self._live.set()
                        backoff = 0.5
                        log.info("cloud %s: reading Nova's notifications on %s", self._name,
                                 conn.as_uri())
                        while not self._stop.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                conn.heartbeat_check()
            except Exception as exc:  # noqa: BLE001 — waits poll meanwhile; we connect again
                if self._live.is_set() or backoff == 0.5:
                    log.warning("cloud %s: Nova's notifications unavailable (%s); polling until they are back",
                                self._name, exc)
            finally:
                self._live.clear()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
