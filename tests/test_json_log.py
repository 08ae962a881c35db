"""Log records as one JSON line each, extra fields kept, exceptions folded into the line."""

from __future__ import annotations

import json
import logging
import sys

from adapter.json_log import JsonFormatter


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("adapter.test")
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            exc_info = sys.exc_info()
    return logger.makeRecord("adapter.test", logging.WARNING, __file__, 1, msg, args, exc_info, extra=extra)


def test_a_record_is_one_json_line_with_its_extra_fields():
    line = JsonFormatter().format(record("call %s: %d turns", "call-1", 3, call_id="call-1", status=200))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "adapter.test"
    assert data["message"] == "call call-1: 3 turns" and (data["call_id"], data["status"]) == ("call-1", 200)
    assert data["time"].endswith("+00:00")


def test_an_exception_stays_on_the_line():
    line = JsonFormatter().format(record("failed", exc=True))
    assert "\n" not in line and "ValueError: bad" in json.loads(line)["exception"]
