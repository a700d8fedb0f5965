"""Structured JSON logs: one object a line, carrying event id and correlation id when known.

>>> import logging
>>> record = logging.LogRecord("w", logging.INFO, __file__, 1, "event %s", ("done",), None)
>>> record.event_id = "e1"
>>> import json; json.loads(JsonFormatter().format(record))["event_id"]
'e1'
"""

import json
import logging
from datetime import datetime, timezone

__all__ = ["JsonFormatter", "install_json_logging", "CONTEXT_FIELDS"]

# Fields a log call may pass with ``extra=``; they appear as top-level keys.
CONTEXT_FIELDS = ("event_id", "correlation_id", "observer", "queue", "task_id", "retries",
                  "marked_dead_in_odoo")
_TASK_FIELDS = ("task_id", "task_name")


class JsonFormatter(logging.Formatter):
    """Formats records as compact JSON."""

    def format(self, record):
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


def install_json_logging(logger):
    """Give every handler of ``logger`` (and the root logger) the JSON formatter."""
    for target in {logger, logging.getLogger()}:
        for handler in target.handlers:
            handler.setFormatter(JsonFormatter())
