"""An app's Mp1 subscriptions, as both Mp1 APIs serve them (MEC 011 clauses 7.2.6-7.2.7 and 8.2.8-8.2.9):
each API holds one subscription type under ``/applications/{appInstanceId}/subscriptions``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from meao.api.responses import JSON, Reply, no_content
from meao.db.models import MepApp, MepSubscription
from meao.db.session import session_scope
from meao.problems import NotFound
from mecpm.mep.api import base, own_app


@dataclass(frozen=True)
class SubscriptionResource:
    """The subscriptions of one Mp1 API: its base path, the type it holds and the fields it keeps."""

    api_path: str  # "/mec_app_support/v1"
    subscription_type: str
    fields: tuple[str, ...]

    def href(self, app_instance_id: str, sub_id: str | None = None) -> str:
        url = f"{base()}{self.api_path}/applications/{app_instance_id}/subscriptions"
        return f"{url}/{sub_id}" if sub_id else url

    def render(self, row: MepSubscription) -> dict[str, Any]:
        return dict(row.body, _links={"self": {"href": self.href(row.app_instance_id, row.id)}})

    def list(self, app_instance_id: str) -> Reply:
        """The subscription link list (MecAppSuptApiSubscriptionLinkList, MecServiceMgmtApiSubscriptionLinkList)."""
        with session_scope() as session:
            own_app(session, app_instance_id)
            rows = session.scalars(select(MepSubscription).where(
                MepSubscription.app_instance_id == app_instance_id,
                MepSubscription.subscription_type == self.subscription_type).order_by(MepSubscription.created_at))
            links = [{"href": self.href(app_instance_id, r.id), "rel": r.subscription_type} for r in rows]
        return {"_links": {"self": {"href": self.href(app_instance_id)}, "subscriptions": links}}, 200, JSON

    def create(self, app: MepApp, body: dict[str, Any], session: Any) -> Reply:
        """Store a subscription the caller checked; 201 with its Location."""
        row = MepSubscription(app_instance_id=app.app_instance_id, host_id=app.host_id,
                              subscription_type=self.subscription_type, callback_reference=body["callbackReference"],
                              body={k: body[k] for k in self.fields if k in body})
        session.add(row)
        session.flush()
        answer = self.render(row)
        return answer, 201, {**JSON, "Location": answer["_links"]["self"]["href"]}

    def _own(self, session: Any, app_instance_id: str, sub_id: str) -> MepSubscription:
        own_app(session, app_instance_id)
        row = session.get(MepSubscription, sub_id)
        if row is None or row.app_instance_id != app_instance_id or row.subscription_type != self.subscription_type:
            raise NotFound(f"application instance {app_instance_id} has no subscription {sub_id}")
        return row

    def get(self, app_instance_id: str, sub_id: str) -> Reply:
        with session_scope() as session:
            return self.render(self._own(session, app_instance_id, sub_id)), 200, JSON

    def delete(self, app_instance_id: str, sub_id: str) -> Reply:
        with session_scope() as session:
            session.delete(self._own(session, app_instance_id, sub_id))
        return no_content()
