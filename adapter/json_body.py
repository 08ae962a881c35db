"""JSON request and message bodies parsed safely: nesting depth is checked before parsing.

`json.loads` recurses once per level, so a body nested 100,000 deep raises `RecursionError` (a 500,
or a dead socket) instead of a parse error. The depth is counted here with a flat scan first; every
failure is a `JsonBodyError` (a `ValueError`) whose message can be shown to the client as is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

#: Deep enough for any bot template or door message we read; far below the interpreter's recursion limit.
MAX_DEPTH = 100

# A JSON string, escapes included: removed first, so brackets inside strings do not count.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonBodyError(ValueError):
    """The body is not JSON we accept; the message says why in one line, without quoting the body."""


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of `text` nest (0 for a scalar), without recursing.

    Regular expressions and numpy keep it linear and in C: a 16 MB body of brackets takes a fraction of a second."""
    brackets = np.frombuffer(_NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii"), dtype=np.uint8)
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def load_json(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a UTF-8 JSON body.

    Raises:
        JsonBodyError: the body is not UTF-8, nests deeper than `max_depth`, or is not valid JSON.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonBodyError(f"the JSON body is not UTF-8 (byte {exc.start})") from None
    if nesting_depth(body) > max_depth:
        raise JsonBodyError(f"the JSON body nests deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise JsonBodyError(f"the body is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # only reachable with a max_depth near the interpreter's limit
        raise JsonBodyError("the JSON body nests too deep") from None
    except ValueError:  # a number of more than 4,300 digits (Python's limit on int conversion)
        raise JsonBodyError("the JSON body holds a number too long to read") from None
