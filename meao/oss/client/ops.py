"""meao's own ops API, ``/ops/v1``: MEC hosts, job queues, MEPM-V workers and jobs."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from meao.oss.client.session import Proxy


class OpsProxy(Proxy):
    """The MEC host inventory and the job machinery."""

    root: ClassVar[str] = "/ops/v1"

    # ---------------------------------------------------------------------------------- MEC hosts
    def list_hosts(self) -> list[dict[str, Any]]:
        """GET /ops/v1/mec_hosts."""
        return self._json("GET", "/mec_hosts")

    def get_host(self, host_id: str) -> dict[str, Any]:
        """GET /ops/v1/mec_hosts/{id}."""
        return self._json("GET", f"/mec_hosts/{host_id}")

    def put_host(self, host: dict[str, Any]) -> dict[str, Any]:
        """PUT /ops/v1/mec_hosts/{id}: create or replace a MEC host."""
        return self._json("PUT", f"/mec_hosts/{host['id']}", json=host)

    def delete_host(self, host_id: str) -> None:
        """DELETE /ops/v1/mec_hosts/{id}."""
        self._request("DELETE", f"/mec_hosts/{host_id}")

    def host_capacity(self, host_id: str, refresh: bool = False) -> dict[str, Any]:
        """GET /ops/v1/mec_hosts/{id}/capacity."""
        return self._json("GET", f"/mec_hosts/{host_id}/capacity", params={"refresh": "true"} if refresh else None)

    # ------------------------------------------------------------------- queues, workers, jobs
    def list_queues(self) -> list[dict[str, Any]]:
        """GET /ops/v1/queues."""
        return self._json("GET", "/queues")

    def get_queue(self, name: str) -> dict[str, Any]:
        """GET /ops/v1/queues/{name}: with its waiting jobs."""
        return self._json("GET", f"/queues/{quote(name, safe='')}")

    def purge_queue(self, name: str) -> dict[str, Any]:
        """POST /ops/v1/queues/{name}/purge."""
        return self._json("POST", f"/queues/{quote(name, safe='')}/purge")

    def list_workers(self) -> list[dict[str, Any]]:
        """GET /ops/v1/workers."""
        return self._json("GET", "/workers")

    def control_worker(self, name: str, action: str) -> dict[str, Any]:
        """POST /ops/v1/workers/{name}/{action} (``drain`` or ``resume``)."""
        return self._json("POST", f"/workers/{quote(name, safe='')}/{action}")

    def list_jobs(self, state: str | None = None, queue: str | None = None) -> list[dict[str, Any]]:
        """GET /ops/v1/jobs (every page)."""
        params = {k: v for k, v in (("state", state), ("queue", queue)) if v}
        return [job for page in self._pages("/jobs", params or None) for job in page]
