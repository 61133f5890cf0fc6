"""Logging set-up of the daemon: text for people and journald, or one JSON object per line for log shippers.

The JSON formatter is a few lines over :mod:`json` rather than a dependency (python-json-logger):
the record fields are fixed and few, and the standard library already does the escaping.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from typing import Any

LOG_FORMATS = ("text", "json")

# Under systemd, journald stamps every line itself; a second timestamp only costs width.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"
JOURNAL_TEXT_FORMAT = "%(levelname)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``,
    ``message``, and ``exception`` when the record carries a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        # ensure_ascii: a log shipper that splits on bytes never sees a raw newline or odd encoding.
        return json.dumps(entry, ensure_ascii=True)


def _not_pyroute2_debug(record: logging.LogRecord) -> bool:
    # pyroute2 logs every netlink message at debug level: far too much for ours.
    return record.levelno >= logging.WARNING or not record.name.startswith("pyroute2")


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for ``fmt`` (one of :data:`LOG_FORMATS`)."""
    if fmt == "json":
        return JsonFormatter()
    if fmt != "text":
        raise ValueError(f"unknown log format {fmt!r}; expected one of: {', '.join(LOG_FORMATS)}")
    return logging.Formatter(JOURNAL_TEXT_FORMAT if os.environ.get("JOURNAL_STREAM") else TEXT_FORMAT)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Log at ``level`` (debug, info, warning, error) to stderr in format ``fmt`` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(_not_pyroute2_debug)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
