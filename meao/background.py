"""Background services every worker process runs beside its Celery jobs.

- the outbox deliverer (notifications to subscribers),
- the reaper, at start-up and then periodically, for onboardings and lifecycle operations whose
  worker vanished (lifecycle occurrences go PROCESSING → FAILED_TEMP).
"""

from __future__ import annotations

import logging
import threading

from meao.config import Settings
from meao.notify.delivery import Deliverer

log = logging.getLogger(__name__)


class Background:
    """Start/stop the deliverer and the periodic reaper together."""

    def __init__(self, settings: Settings, *, embedded: bool) -> None:
        self.settings = settings
        self.embedded = embedded
        self.deliverer = Deliverer(settings)
        self._stop = threading.Event()
        self.stale_after_s = settings.jobs.job_stale_s
        self.op_stale_after_s = settings.jobs.op_stale_s
        self.reap_every_s = settings.jobs.reap_interval_s
        self._thread = threading.Thread(target=self._reap_loop, name="meao-reaper", daemon=True)

    def start(self) -> None:
        """Reap once now (an embedded broker lost its queue with the last process), then periodically."""
        from meao.catalogue.onboarding import reap_stale_onboardings
        from mecpm.runner import reap_lost_operations, resend_unclaimed

        try:
            reap_stale_onboardings(self.stale_after_s, include_unclaimed=self.embedded)
            reap_lost_operations(self.op_stale_after_s)
            if self.embedded:  # the in-memory queue died with the previous process
                resend_unclaimed()
        except Exception:
            log.exception("start-up reaping failed")
        self.deliverer.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop both loops."""
        self._stop.set()
        self.deliverer.stop()

    def _reap_loop(self) -> None:
        from meao.catalogue.onboarding import reap_stale_onboardings
        from mecpm.runner import reap_lost_operations

        while not self._stop.wait(self.reap_every_s):
            try:
                reap_stale_onboardings(self.stale_after_s)
                reap_lost_operations(self.op_stale_after_s)
            except Exception:
                log.exception("reaping failed")
