"""Structured JSON logs: one object a line, carrying event id and correlation id when known.

Where the ids come from, first found wins:

1. ``extra=`` of the log call (``delivery.log_extra()`` in the delivery code);
2. the task being run by this process: :func:`install_json_logging` connects Celery's
   ``task_prerun``/``task_postrun`` signals, which keep the running event task's ids in a
   context variable, so every line logged during the task (Celery's own, Odoo connector,
   retries) carries them;
3. Celery's "Task ...[<id>] received/succeeded" lines: their ``data`` names the task id,
   which for an event message is ``<event id>:<observer>``.

>>> import logging
>>> record = logging.LogRecord("w", logging.INFO, __file__, 1, "event %s", ("done",), None)
>>> record.event_id = "e1"
>>> import json; json.loads(JsonFormatter().format(record))["event_id"]
'e1'
>>> record = logging.LogRecord("celery", logging.INFO, __file__, 1, "received", (), None)
>>> record.data = {"id": "e2:quicksol.observer.x", "name": "quicksol.event.deliver"}
>>> json.loads(JsonFormatter().format(record))["event_id"]
'e2'
"""

import contextvars
import json
import logging
from datetime import datetime, timezone

from quicksol_bus.topology import TASK_NAME

__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "TaskContextFilter", "install_json_logging", "task_context"]

# Fields a log call may pass with ``extra=``; they appear as top-level keys.
CONTEXT_FIELDS = (
    "event_id",
    "correlation_id",
    "observer",
    "queue",
    "task_id",
    "retries",
    "marked_dead_in_odoo",
)
_TASK_FIELDS = ("task_id", "task_name")

#: ids of the event task this process (or thread) is running, for every line it logs.
_task_context = contextvars.ContextVar("quicksol_task_context", default=None)


def task_context():
    """The ids of the running event task (dict) or None."""
    return _task_context.get()


def _from_celery_data(record):
    data = getattr(record, "data", None)
    if isinstance(data, dict) and data.get("name") == TASK_NAME and data.get("id"):
        task_id = str(data["id"])
        return {
            "task_id": task_id,
            "event_id": task_id.split(":", 1)[0],
            "observer": task_id.split(":", 1)[1] if ":" in task_id else None,
        }
    return None


class TaskContextFilter(logging.Filter):
    """Adds the running task's ids to records that do not carry them already."""

    def filter(self, record):
        context = _task_context.get() or _from_celery_data(record) or {}
        for name, value in context.items():
            if value not in (None, "") and getattr(record, name, None) in (None, "", "???"):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """Formats records as compact JSON."""

    def format(self, record):
        TaskContextFilter().filter(record)
        data = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS + _TASK_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, "", "???"):
                data[name] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def _on_task_prerun(task=None, args=None, kwargs=None, **_ignored):
    if task is None or task.name != TASK_NAME:
        _task_context.set(None)
        return
    try:
        from .messages import from_request

        extra = from_request(task.request, args or (), kwargs or {}).log_extra()
    except Exception:  # noqa: BLE001 - logging context must never stop a task
        extra = {"task_id": getattr(task.request, "id", None)}
    _task_context.set({k: v for k, v in extra.items() if k in CONTEXT_FIELDS})


def _on_task_postrun(**_ignored):
    _task_context.set(None)


def _connect_task_signals():
    from celery import signals

    signals.task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="quicksol_logs_prerun")
    signals.task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="quicksol_logs_postrun")


def install_json_logging(logger):
    """Give every handler of ``logger`` (and the root logger) the JSON formatter, and keep the
    running event task's ids for every line logged while it runs."""
    for target in {logger, logging.getLogger()}:
        for handler in target.handlers:
            handler.setFormatter(JsonFormatter())
    _connect_task_signals()
