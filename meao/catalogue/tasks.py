"""Celery tasks of the catalogue: thin wrappers around ``meao.catalogue.onboarding``."""

from __future__ import annotations

from meao.catalogue.onboarding import run_onboarding
from meao.celery_app import celery_app
from meao.jobs.contract import ONBOARD_TASK


@celery_app.task(name=ONBOARD_TASK, acks_late=True, reject_on_worker_lost=True)
def onboard(pkg_id: str, attempt: str) -> None:
    """Onboard one application package attempt (see ``run_onboarding``)."""
    run_onboarding(pkg_id, int(attempt))
