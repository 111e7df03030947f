"""The Celery application shared by the MEAO (catalogue jobs) and the MEPM-V (lifecycle jobs).

Jobs carry only an identifier; the database is the source of truth for their state. With no broker
configured, the ``memory://`` transport and a worker thread inside the API process run them. Not
``filesystem://``: a worker can read a message file before it is fully written, fail to decode it and
exit, losing messages. Not ``sqla+sqlite://``: a SIGKILL mid-task loses the task for good, and workers
cannot be inspected remotely.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from celery import Celery

from meao.config import Settings

log = logging.getLogger(__name__)

#: message header with the send time (epoch seconds): the age of the oldest waiting job comes from it
ENQUEUED_AT_HEADER = "meao_enqueued_at"

celery_app = Celery("meao", include=["meao.catalogue.tasks", "mecpm.tasks"])

#: How a Redis broker connection notices that its peer went silent (a PoP's WAN link cut, a broker gone
#: without closing its sockets). kombu drops a consumer's BRPOP whose reply is ``brpop_timeout`` (1 s) +
#: ``health_check_interval`` overdue and reconnects; with its default of 25 s a PoP came back to work about
#: 52 s after its link returned (the lab's cut test), with 5 s in about 10 s. redis-py also PINGs a
#: connection idle for longer than that before using it (one round trip, off any operation's path: the
#: broker carries only job ids and acknowledgements). Keepalive probes break a silent idle connection,
#: and a command that gets no reply for 30 s fails rather than waiting forever.
BROKER_LIVENESS = {
    "health_check_interval": 5,
    "socket_keepalive": True,
    "socket_keepalive_options": {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3},
    "socket_connect_timeout": 10,
    "socket_timeout": 30,
}


def configure_celery(settings: Settings) -> Celery:
    """Point the Celery app at the configured broker, with crash-safe delivery settings.

    A ``rediss://`` broker gets verified TLS from the settings (:func:`meao.transport.redis_ssl_options`).
    """
    from meao.transport import redis_ssl_options

    broker = settings.broker_url or "memory://"
    celery_app.conf.update(
        broker_url=broker,
        broker_use_ssl=redis_ssl_options(settings),
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.catalogue_queue,
        task_routes={"meao.catalogue.*": {"queue": settings.catalogue_queue}},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_transport_options=(
            {"polling_interval": 0.01} if broker.startswith("memory") else
            # must exceed the longest job; a SIGKILLed worker's message comes back after it
            {"visibility_timeout": 3600, "unacked_restore_interval": 5, "unacked_restore_throttle": 1,
             **BROKER_LIVENESS, **unacked_keys(settings.broker_unacked_key)}
        ),
    )
    if broker.startswith("memory"):
        from kombu.transport import memory

        memory.Channel.polling_interval = 0.01
    return celery_app


def unacked_keys(key: str) -> dict[str, str]:
    """kombu's Redis keys for the messages a worker holds unacknowledged, all named after ``key``.

    kombu's defaults ("unacked", "unacked_index", "unacked_mutex") are shared by every worker of the broker,
    so restoring after a crash reads every queue's held messages; a PoP whose ACL user may touch only its
    own keys gets its own three (MEAO_BROKER_UNACKED_KEY=unacked.mecpm.pop1).
    """
    return {"unacked_key": key, "unacked_index_key": f"{key}_index", "unacked_mutex_key": f"{key}_mutex"}


def prepare_jobs(settings: Settings) -> Celery:
    """Configure the Celery app and register every task with it: what a process that sends or runs jobs
    does once before it starts."""
    configure_celery(settings)
    import meao.catalogue.tasks  # noqa: F401 — importing registers the tasks
    import mecpm.tasks  # noqa: F401
    return celery_app


def start_embedded_worker(settings: Settings, queues: list[str], concurrency: int = 2):
    """Run a thread-pool Celery worker inside this process (zero-setup mode); returns it."""
    from celery.worker import WorkController

    configure_celery(settings)
    celery_app.finalize()
    celery_app.set_current()
    celery_app.set_default()
    worker = WorkController(app=celery_app, pool_cls="threads", concurrency=concurrency, queues=queues,
                            without_mingle=True, without_gossip=True, without_heartbeat=True,
                            loglevel="WARNING")
    thread = threading.Thread(target=worker.start, name="meao-embedded-worker", daemon=True)
    thread.start()
    log.info("embedded worker started on %s", ",".join(queues))
    return worker


def send_job(task_name: str, args: list[str], queue: str) -> None:
    """Send one message now, failing fast when the broker does not answer (the outbox keeps the job).

    Only :mod:`meao.jobs.dispatcher` calls this: everything else writes a row with
    :func:`meao.jobs.outbox.add`. The message carries only identifiers, and when it was sent (queue age).
    """
    celery_app.send_task(task_name, args=list(args), queue=queue, headers={ENQUEUED_AT_HEADER: time.time()},
                         retry=False)


def all_queues(settings: Settings) -> list[str]:
    """The catalogue queue and the queue of every MEC host in the inventory (a central worker's set)."""
    from meao.db.session import session_scope
    from meao.lcm.hosts import list_hosts

    with session_scope() as session:
        return [settings.catalogue_queue, *sorted({h.queue for h in list_hosts(session)})]
