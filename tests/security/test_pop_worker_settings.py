"""A PoP worker's settings for narrow broker rights: its own unacked keys, no background duties."""

from __future__ import annotations

from meao.celery_app import celery_app, configure_celery
from meao.config import load_settings


def test_a_pops_unacked_keys_are_its_own_and_the_default_is_kombus(monkeypatch) -> None:
    monkeypatch.setenv("MEAO_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("MEAO_BROKER_UNACKED_KEY", "unacked.mecpm.pop1")
    try:
        configure_celery(load_settings())
        options = celery_app.conf.broker_transport_options
        assert (options["unacked_key"], options["unacked_index_key"], options["unacked_mutex_key"]) == (
            "unacked.mecpm.pop1", "unacked.mecpm.pop1_index", "unacked.mecpm.pop1_mutex")
        monkeypatch.delenv("MEAO_BROKER_UNACKED_KEY")
        configure_celery(load_settings())
        options = celery_app.conf.broker_transport_options
        assert (options["unacked_key"], options["unacked_index_key"], options["unacked_mutex_key"]) == (
            "unacked", "unacked_index", "unacked_mutex"), "unchanged where nothing is set (no stranded messages)"
    finally:
        monkeypatch.delenv("MEAO_BROKER_URL")
        configure_celery(load_settings())


def test_worker_background_is_on_unless_switched_off(monkeypatch) -> None:
    assert load_settings().worker_background is True
    monkeypatch.setenv("MEAO_WORKER_BACKGROUND", "false")
    assert load_settings().worker_background is False
