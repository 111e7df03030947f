"""Notification bodies (MEC 010-2 clause 6.2.2.11 AppInstNotification)."""

from __future__ import annotations

import json

from sqlalchemy import select

from meao.db.models import AppInstance, MecHost, OutboxMessage, Subscription
from meao.db.session import session_scope
from meao.notify.lcm_events import emit_instance_state_notification
from meao.wire.links import APP_LCM

LOCATION = {"countryCode": "FI", "latitude": 60.17, "longitude": 24.9}


def _state_change(state: str | None) -> dict:
    """Emit the AppInstNotification of an instance on a located host in ``state``; the outbox's payload."""
    with session_scope() as session:
        session.add(MecHost(id="edge-1", name="Edge 1", cloud="pop-a", queue="mecpm.edge-1", location=LOCATION))
        session.add(Subscription(api=APP_LCM, subscription_type="AppInstanceStateChangeSubscription",
                                 callback_uri="http://127.0.0.1:9/cb"))
        inst = AppInstance(app_pkg_id="pkg-1", appd_id="appd-1", app_provider="acme", app_name="app",
                           app_soft_version="1", appd_version="1", mec_host_id="edge-1",
                           instantiation_state="INSTANTIATED" if state else "NOT_INSTANTIATED",
                           operational_state=state)
        session.add(inst)
        session.flush()
        emit_instance_state_notification(session, inst)
    with session_scope() as session:
        return session.scalars(select(OutboxMessage.payload)).one()


def test_app_inst_notification_of_an_instantiated_instance_carries_its_location(database: str) -> None:
    """Table 6.2.2.11.2-1: appInstLocation shall be present if the application instance is instantiated."""
    body = _state_change("STARTED")
    assert body["appInstanceState"] == "STARTED"
    assert body["appInstLocation"]["countryCode"] == "FI"
    assert json.loads(body["appInstLocation"]["geographicalPosition"]) == {"type": "Point",
                                                                          "coordinates": [24.9, 60.17]}


def test_app_inst_notification_of_a_not_instantiated_instance_has_no_location(database: str) -> None:
    """Table 6.2.2.11.2-1: appInstLocation shall be absent otherwise."""
    body = _state_change(None)
    assert body["appInstanceState"] == "NOT_INSTANTIATED"
    assert "appInstLocation" not in body
