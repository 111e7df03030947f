"""Process logging: plain text or one JSON object per line, both carrying the op occurrence id.

The id of the application LCM operation occurrence being handled travels with the work: the API binds it
while it creates and enqueues the occurrence, the MEPM-V worker binds it for the whole job, and the VIM
driver sends it to OpenStack as the global request id (``X-OpenStack-Request-ID: req-<op id>``), so one
``grep <op id>`` finds the API line, the worker's step lines and the Nova / Neutron / Glance log lines.

``MEAO_LOG_FORMAT=json`` selects JSON lines (fields: ``ts``, ``level``, ``logger``, ``msg``, ``op_id``,
``process``, ``thread`` and ``exc`` when there is a traceback); the default is text.

Every record's final text has credentials masked (:mod:`meao.redaction`): the database and broker
passwords, the password in an ``appPkgPath`` or ``callbackUri``. It is done in the record itself
(:class:`RedactedLogRecord`, installed as the process's log record factory), not by a filter on meao's
handler, because Celery and uvicorn log through handlers of their own that such a filter would miss.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from meao.redaction import redact

_op_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("meao_op_id", default=None)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(op_tag)s: %(message)s"
CHATTY = ("httpx", "httpcore", "openstack", "keystoneauth", "stevedore")  # one line per request otherwise


def current_op_id() -> str | None:
    """The op occurrence id bound in this thread / task, if any."""
    return _op_id.get()


@contextlib.contextmanager
def bind_op(op_id: str | None) -> Iterator[None]:
    """Tag every log line (and OpenStack request) made inside the block with ``op_id``."""
    token = _op_id.set(op_id)
    try:
        yield
    finally:
        _op_id.reset(token)


def openstack_request_id() -> str | None:
    """``req-<op id>``: the global request id OpenStack services accept and write into their logs."""
    op_id = _op_id.get()
    return f"req-{op_id}" if op_id and _UUID.match(op_id) else None


class _OpIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        op_id = _op_id.get()
        record.op_id = op_id
        record.op_tag = f" [op {op_id}]" if op_id else ""
        return True


class RedactedLogRecord(logging.LogRecord):
    """A log record whose message, traceback text and stack text never show a URL password.

    The message is masked when it is rendered (``getMessage``), so a record a level or a filter drops
    costs nothing. Formatters store the rendered traceback in ``exc_text``; it is masked as it is stored,
    so every formatter that follows ``logging.Formatter``'s protocol (Celery's, uvicorn's) prints it
    masked. The cheap pre-check lives in :func:`meao.redaction.redact`.
    """

    _exc_text: str | None = None
    _stack_info: str | None = None

    def getMessage(self) -> str:
        return redact(super().getMessage())

    @property
    def exc_text(self) -> str | None:  # type: ignore[override]
        return self._exc_text

    @exc_text.setter
    def exc_text(self, value: str | None) -> None:
        self._exc_text = redact(value) if value else value

    @property
    def stack_info(self) -> str | None:  # type: ignore[override]
        return self._stack_info

    @stack_info.setter
    def stack_info(self, value: str | None) -> None:
        self._stack_info = redact(value) if value else value


def _install_redaction() -> None:
    """Make every log record of this process a masking one (once; a foreign factory is wrapped)."""
    current = logging.getLogRecordFactory()
    if current is RedactedLogRecord or getattr(current, "meao_redacting", False):
        return
    if current is logging.LogRecord:
        logging.setLogRecordFactory(RedactedLogRecord)
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.msg, record.args = redact(record.getMessage()), None  # eager: we do not own its class
        return record

    factory.meao_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; never raises on odd arguments."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "op_id": getattr(record, "op_id", None),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            if not record.exc_text:  # through the record, which masks it (see RedactedLogRecord)
                record.exc_text = self.formatException(record.exc_info)
            doc["exc"] = redact(record.exc_text)  # again: a record from a foreign factory
        return json.dumps(doc, default=str)


def setup_logging(level: str = "INFO", fmt: str | None = None) -> None:
    """Configure the root logger once for this process (``fmt``: ``text`` or ``json``)."""
    from meao.config import log_environment

    fmt = (fmt or log_environment()[1]).lower()
    _install_redaction()
    handler = logging.StreamHandler()
    handler.addFilter(_OpIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(logging.WARNING)
