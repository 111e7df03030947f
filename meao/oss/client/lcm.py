"""The lifecycle management API, Mm1 ``/app_lcm/v1`` (MEC 010-2 clause 7.4): instances and op occurrences.

The camelCase of the ETSI request types (InstantiateAppRequest …) is written here; answers come back as
the API sends them (AppInstanceInfo, AppLcmOpOcc …).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from meao.oss.client.errors import OperationFailed
from meao.oss.client.session import id_from
from meao.oss.client.subscriptions import SubscriptionsProxy
from meao.oss.client.waiting import OnPoll, wait_for

#: operationState values after which an operation occurrence no longer runs by itself (clause 6.2.2.13)
OP_STOPPED_STATES = ("COMPLETED", "FAILED", "FAILED_TEMP")


class LcmProxy(SubscriptionsProxy):
    """Application instances, their LCM operation occurrences, and lifecycle subscriptions."""

    root: ClassVar[str] = "/app_lcm/v1"
    api: ClassVar[str] = "lcm"

    # -------------------------------------------------------------------- application instances
    def list_apps(self, filter_: str | None = None) -> list[dict[str, Any]]:
        """GET /app_instances (clause 7.4.1.3.2)."""
        return self._list("/app_instances", filter_)

    def get_app(self, app_id: str) -> dict[str, Any]:
        """GET /app_instances/{id}: the AppInstanceInfo."""
        return self._json("GET", f"/app_instances/{app_id}")

    def create_app(self, appd_id: str, name: str | None = None, description: str | None = None) -> dict[str, Any]:
        """POST /app_instances with a CreateAppInstanceRequest (clause 6.2.2.3)."""
        body: dict[str, Any] = {"appDId": appd_id}
        if name:
            body["appInstanceName"] = name
        if description:
            body["appInstanceDescription"] = description
        return self._json("POST", "/app_instances", json=body)

    def delete_app(self, app_id: str) -> None:
        """DELETE /app_instances/{id} (only a NOT_INSTANTIATED instance)."""
        self._request("DELETE", f"/app_instances/{app_id}")

    def _task(self, app_id: str, task: str, body: dict[str, Any]) -> str:
        resp = self._request("POST", f"/app_instances/{app_id}/{task}", json=body)
        return id_from(resp.headers.get("Location", ""))

    def instantiate(self, app_id: str, hosts: list[str], served_area: str | None = None) -> str:
        """POST …/instantiate (InstantiateAppRequest, clause 6.2.2.7); returns the op occurrence id.

        ``served_area`` is meao's ``servedArea`` extension: the cell or tracking area of the users. ``hosts``
        is a preference: on Mm1 the MEAO selects the host (table 6.2.2.7.2-1, note 2); none leaves it free.
        """
        body: dict[str, Any] = {}
        if hosts:
            body["selectedMECHostInfo"] = [{"hostId": {"id": host}} for host in hosts]
        if served_area:
            body["servedArea"] = served_area
        return self._task(app_id, "instantiate", body)

    def operate(self, app_id: str, state: str, graceful_timeout: int | None = None) -> str:
        """POST …/operate (OperateAppRequest, clause 6.2.2.8): a stop is GRACEFUL with a timeout, else FORCEFUL."""
        body: dict[str, Any] = {"changeStateTo": state}
        if state == "STOPPED":
            body["stopType"] = "GRACEFUL" if graceful_timeout is not None else "FORCEFUL"
            if graceful_timeout is not None:
                body["gracefulStopTimeout"] = graceful_timeout
        return self._task(app_id, "operate", body)

    def terminate(self, app_id: str, graceful_timeout: int | None = None) -> str:
        """POST …/terminate (TerminateAppRequest, clause 6.2.2.9): GRACEFUL with a timeout, else FORCEFUL."""
        body: dict[str, Any] = {"terminationType": "GRACEFUL" if graceful_timeout is not None else "FORCEFUL"}
        if graceful_timeout is not None:
            body["gracefulTerminationTimeout"] = graceful_timeout
        return self._task(app_id, "terminate", body)

    # ---------------------------------------------------------------------- LCM op occurrences
    def list_ops(self, app_id: str | None = None) -> list[dict[str, Any]]:
        """GET /app_lcm_op_occs (clause 7.4.9.3.2), optionally of one application instance."""
        return self._list("/app_lcm_op_occs", f"(eq,appInstanceId,{app_id})" if app_id else None)

    def get_op(self, op_id: str) -> dict[str, Any]:
        """GET /app_lcm_op_occs/{id}: the AppLcmOpOcc."""
        return self._json("GET", f"/app_lcm_op_occs/{op_id}")

    def retry_op(self, op_id: str) -> None:
        """POST …/retry (clause 7.4.13): a FAILED_TEMP operation continues."""
        self._request("POST", f"/app_lcm_op_occs/{op_id}/retry")

    def fail_op(self, op_id: str) -> dict[str, Any]:
        """POST …/fail (clause 7.4.12): a FAILED_TEMP operation becomes FAILED; returns the AppLcmOpOcc."""
        return self._json("POST", f"/app_lcm_op_occs/{op_id}/fail")

    def cancel_op(self, op_id: str, mode: str = "GRACEFUL") -> None:
        """POST …/cancel with CancelMode (clause 7.4.11): ``GRACEFUL`` or ``FORCEFUL``."""
        self._request("POST", f"/app_lcm_op_occs/{op_id}/cancel", json={"CancelMode": mode})

    def follow_op(self, op_id: str, until: Callable[[dict[str, Any]], bool], *, timeout: float | None,
                  on_poll: OnPoll | None = None) -> dict[str, Any]:
        """Read the AppLcmOpOcc until ``until(op)``; ``WaitTimeout`` after ``timeout`` seconds."""
        return wait_for(lambda: self.get_op(op_id), until, kind="operation", timeout=timeout, on_poll=on_poll)

    def wait_op(self, op_id: str, *, timeout: float | None, on_poll: OnPoll | None = None) -> dict[str, Any]:
        """Follow an op occurrence until it stops; ``OperationFailed`` unless it is COMPLETED."""
        op = self.follow_op(op_id, lambda o: o.get("operationState") in OP_STOPPED_STATES, timeout=timeout,
                            on_poll=on_poll)
        if op.get("operationState") != "COMPLETED":
            problem = op.get("error") or {"title": f"operation {op.get('operationState')}",
                                          "detail": f"operation {op_id} ended {op.get('operationState')}"}
            raise OperationFailed(f"{op.get('lcmOperation', 'LCM').lower()} operation", op, problem)
        return op

    # ---------------------------------------------------------------------------- subscriptions
    def filter_body(self, subscription_type: str, filter_: dict[str, Any] | list[Any]) -> dict[str, Any]:
        """Op occurrence subscriptions filter by AppLcmOpOccSubscriptionFilter, the others by instance."""
        if subscription_type == "AppLcmOpOccStateChangeSubscription":
            return {"appLcmOpOccSubscriptionFilter": filter_}
        return {"appInstanceSubscriptionFilter": filter_}
