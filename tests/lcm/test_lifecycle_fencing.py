"""The lifecycle's transitions (meao/lcm/lifecycle.py) on real SQLite and PostgreSQL: claims, fencing,
cancel at a boundary, rollback attempts, the reaper on the database clock, and the job outbox."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from meao.config import load_settings, set_settings
from meao.db.clock import db_now
from meao.db.models import AppInstance, AppLcmOpOcc, Job
from meao.db.session import session_scope
from meao.jobs import dispatcher
from meao.lcm import lifecycle
from meao.lcm.op_occ import COMPLETED, FAILED, FAILED_TEMP, PROCESSING

pytestmark = pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)


def _new_op(database: str, operation: str = "INSTANTIATE") -> tuple[str, str]:
    with session_scope() as session:
        inst = AppInstance(app_pkg_id="p", appd_id="a", app_provider="x", app_name="n", app_soft_version="1",
                           appd_version="1")
        session.add(inst)
        session.flush()
        op = AppLcmOpOcc(app_instance_id=inst.id, lcm_operation=operation, queue="mecpm.pop1")
        session.add(op)
        session.flush()
        inst.current_op_id = op.id
        lifecycle.start(session, op)
    return inst.id, op.id


def _op(op_id: str) -> AppLcmOpOcc:
    with session_scope() as session:
        return session.get(AppLcmOpOcc, op_id)


def _jobs(op_id: str) -> list[tuple[int, str]]:
    with session_scope() as session:
        return [(j.attempt, j.state) for j in session.scalars(select(Job).where(Job.subject == op_id).order_by(Job.id))]


def _age_heartbeat(op_id: str, seconds: float) -> None:
    with session_scope() as session:
        session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id).values(heartbeat_at=db_now(-seconds)))


def test_a_claim_is_taken_once_and_settles_its_job(database: str) -> None:
    _, op_id = _new_op(database)
    assert _jobs(op_id) == [(1, "PENDING")]
    lease = lifecycle.claim(op_id, 1, "w1")
    assert lease is not None and lease.kind == lifecycle.RUN
    assert lifecycle.claim(op_id, 1, "w2") is None, "a second delivery of the job does nothing"
    assert _jobs(op_id) == [(1, "CLAIMED")]
    op = _op(op_id)
    assert (op.operation_state, op.worker) == (PROCESSING, "w1")


def test_a_reaped_worker_is_fenced_out_of_every_write(database: str) -> None:
    inst_id, op_id = _new_op(database)
    lease = lifecycle.claim(op_id, 1, "w1")
    lease.save_resources(inst_id, {"server_id": "s1"})
    assert lifecycle.reap(30) == 0, "a live heartbeat is not reaped"
    _age_heartbeat(op_id, 31)
    assert lifecycle.reap(30) == 1
    assert _op(op_id).operation_state == FAILED_TEMP
    with pytest.raises(lifecycle.Superseded):
        lease.heartbeat()
    with pytest.raises(lifecycle.Superseded):
        lease.save_resources(inst_id, {"server_id": "s2"})
    with pytest.raises(lifecycle.Superseded):
        lease.boundary(["server"], "wait_active")
    with session_scope() as session:
        assert session.get(AppInstance, inst_id).resources == {"server_id": "s1"}, "the fenced write changed nothing"
    assert not lease.fail_temp({"title": "late"}), "the old worker cannot write its outcome either"
    assert _op(op_id).error["title"] == "Worker lost"


def test_a_retry_supersedes_the_old_attempt_and_sends_a_new_job(database: str) -> None:
    inst_id, op_id = _new_op(database)
    old = lifecycle.claim(op_id, 1, "w1")
    assert old.fail_temp({"title": "boom", "status": 503, "detail": "x"})
    with session_scope() as session:
        assert lifecycle.retry(session, session.get(AppLcmOpOcc, op_id))
    assert _jobs(op_id) == [(1, "CLAIMED"), (2, "PENDING")]
    assert lifecycle.claim(op_id, 1, "w1") is None, "the old attempt's job is dead"
    new = lifecycle.claim(op_id, 2, "w2")
    assert new is not None
    with pytest.raises(lifecycle.Superseded):
        old.save_resources(inst_id, {"server_id": "dup"})
    new.complete({"instantiation_state": "INSTANTIATED"}, lambda session, inst: None)
    op = _op(op_id)
    assert (op.operation_state, op.attempt) == (COMPLETED, 2)


@pytest.mark.parametrize("where", ["boundary", "last boundary", "complete"])
def test_a_pending_cancel_stops_the_attempt_wherever_the_worker_is(database: str, where: str) -> None:
    inst_id, op_id = _new_op(database)
    lease = lifecycle.claim(op_id, 1, "w1")
    with session_scope() as session:
        session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id)
                        .values(is_cancel_pending=True, cancel_mode="FORCED"))
    with pytest.raises(lifecycle.CancelRequested, match="FORCED"):
        if where == "boundary":
            lease.boundary(["grant"], "server")
        elif where == "last boundary":
            lease.boundary(["app_rules"], None)
        else:
            lease.complete({"instantiation_state": "INSTANTIATED"}, lambda session, inst: None)
    assert _op(op_id).operation_state == PROCESSING, "nothing completed"
    with session_scope() as session:
        assert session.get(AppInstance, inst_id).instantiation_state == "NOT_INSTANTIATED"


def test_a_rollback_is_an_attempt_of_its_own_and_a_lost_one_frees_the_op(database: str) -> None:
    _, op_id = _new_op(database)
    lifecycle.claim(op_id, 1, "w1").fail_temp({"title": "boom"})
    with session_scope() as session:
        assert lifecycle.request_rollback(session, session.get(AppLcmOpOcc, op_id))
    with session_scope() as session:
        assert not lifecycle.retry(session, session.get(AppLcmOpOcc, op_id)), "locked while it rolls back"
    lease = lifecycle.claim(op_id, 2, "w2")
    assert lease.kind == lifecycle.ROLLBACK
    _age_heartbeat(op_id, 31)
    assert lifecycle.reap(30) == 1
    op = _op(op_id)
    assert (op.operation_state, op.run_kind, op.worker) == (FAILED_TEMP, lifecycle.RUN, None)
    assert "rolling back" in op.error["detail"]
    with session_scope() as session:
        assert lifecycle.request_rollback(session, session.get(AppLcmOpOcc, op_id)), "fail again"
    lifecycle.claim(op_id, 3, "w3").rolled_back({"resources": {}})
    assert _op(op_id).operation_state == FAILED


class _Broker:
    def __init__(self) -> None:
        self.up, self.sent = False, []

    def __call__(self, task: str, args: list[str], queue: str) -> None:
        if not self.up:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.sent.append((task, tuple(args), queue))


def test_the_outbox_keeps_jobs_while_the_broker_is_down_and_sends_again_what_nobody_claimed(
        database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _Broker()
    monkeypatch.setattr(dispatcher, "send_job", broker)
    set_settings(load_settings(MEAO_DATABASE_URL=database, MEAO_JOB_RESEND_AFTER_S="0.3"))
    _, op_id = _new_op(database)
    assert dispatcher.dispatch_due() == 0
    assert _jobs(op_id) == [(1, "PENDING")], "a refused send keeps the job"
    broker.up = True
    time.sleep(1.1)  # the broker-retry pause
    assert dispatcher.dispatch_due() == 1
    assert _jobs(op_id) == [(1, "SENT")] and len(broker.sent) == 1
    assert dispatcher.dispatch_due() == 0, "not again before the resend bound"
    time.sleep(0.35)
    assert dispatcher.dispatch_due() == 1, "nobody claimed it: sent again"
    lifecycle.claim(op_id, 1, "w1")
    time.sleep(1.3)
    assert dispatcher.dispatch_due() == 0, "a claimed job is never sent again"
    assert broker.sent == [("mecpm.run_op", (op_id, "1"), "mecpm.pop1")] * 2




@pytest.mark.parametrize("cancel", [False, True])
def test_complete_records_the_last_stage_with_the_outcome_or_before_a_pending_cancel(database: str,
                                                                                    cancel: bool) -> None:
    """The last boundary goes with the outcome (one round trip fewer at a PoP); a cancel still finds it recorded."""
    _, op_id = _new_op(database)
    lease = lifecycle.claim(op_id, 1, "w1")
    lease.boundary([], "grant")
    lease.boundary(["grant"], "wait_active+app_rules")
    if cancel:
        with session_scope() as session:
            session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id).values(is_cancel_pending=True))
        with pytest.raises(lifecycle.CancelRequested):
            lease.complete({"instantiation_state": "INSTANTIATED"}, lambda session, inst: None,
                           ["wait_active", "app_rules"])
    else:
        lease.complete({"instantiation_state": "INSTANTIATED"}, lambda session, inst: None, ["wait_active", "app_rules"])
    op = _op(op_id)
    assert op.operation_state == (PROCESSING if cancel else COMPLETED)
    assert op.steps_done == ["grant", "wait_active", "app_rules"] and op.current_step is None
    assert [(e["name"], e["ended_at"] is not None) for e in op.step_log] == [
        ("grant", True), ("wait_active", True), ("app_rules", True)]
