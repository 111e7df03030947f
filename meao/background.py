"""Background services every worker process (and the embedded ``meao serve``) runs beside its Celery jobs.

- the job dispatcher (the outbox's jobs to the broker: :mod:`meao.jobs.dispatcher`),
- the outbox deliverer (notifications to subscribers),
- the reaper, at start-up and then periodically, for onboardings and lifecycle attempts whose worker
  vanished (a lifecycle attempt is given up: PROCESSING → FAILED_TEMP, or a rollback handed back).
"""

from __future__ import annotations

import logging
import threading

from meao.config import Settings
from meao.jobs.dispatcher import Dispatcher, resend_now
from meao.notify.delivery import Deliverer

log = logging.getLogger(__name__)


class Background:
    """Start/stop the dispatcher, the deliverer and the periodic reaper together.

    ``deliver`` False leaves notifications to other processes (a ``meao serve`` beside workers).
    """

    def __init__(self, settings: Settings, *, embedded: bool, deliver: bool = True) -> None:
        self.settings = settings
        self.embedded = embedded
        self.dispatcher = Dispatcher(settings)
        self.deliverer = Deliverer(settings) if deliver else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reap_loop, name="meao-reaper", daemon=True)

    def start(self) -> None:
        """Reap once now (an embedded broker lost its queue with the last process), then periodically."""
        try:
            self._reap(at_start=True)
            if self.embedded:  # the in-memory queue died with the previous process: send its jobs again
                resend_now()
        except Exception:
            log.exception("start-up reaping failed")
        self.dispatcher.start()
        if self.deliverer:
            self.deliverer.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop every loop."""
        self._stop.set()
        self.dispatcher.stop()
        if self.deliverer:
            self.deliverer.stop()

    def _reap(self, at_start: bool = False) -> None:
        from meao.catalogue.onboarding import reap_stale_onboardings
        from meao.lcm.lifecycle import reap

        reap_stale_onboardings(self.settings.jobs.job_stale_s, include_unclaimed=at_start and self.embedded)
        reap(self.settings.jobs.op_stale_s)

    def _reap_loop(self) -> None:
        while not self._stop.wait(self.settings.jobs.reap_interval_s):
            try:
                self._reap()
            except Exception:
                log.exception("reaping failed")
