"""What the WebSocket doors (Twilio Media Streams, Vonage) share in reading and writing their JSON
messages: the error that closes one socket with the RFC 6455 §7.4.1 close code that fits, a bounded read
of one JSON object, compact JSON out, the keys they report and the messages they pass over (logged once
per kind). No sockets here: each door's messages module builds on these.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode

from adapter.calls.keypad import DTMF_KEYS
from adapter.json_body import JsonBodyError, load_json

log = logging.getLogger(__name__)

#: kinds of ignored message logged per socket (each once)
MAX_IGNORED_KINDS = 16


class SocketError(Exception):
    """The peer broke the protocol (or may not go on): close its socket with `code`; `reason` is for the
    log and the close frame."""

    def __init__(self, reason: str, code: int = WSCloseCode.POLICY_VIOLATION) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def load_object(text: str, max_chars: int, max_depth: int,
                unreadable: int = WSCloseCode.POLICY_VIOLATION) -> dict[str, Any]:
    """One text message as a JSON object, its size judged before it is parsed (1009 when too long).

    Raises:
        SocketError: too long (1009), or not a JSON object within `max_depth` levels (`unreadable`).
    """
    if len(text) > max_chars:
        raise SocketError(f"a message is at most {max_chars} characters", WSCloseCode.MESSAGE_TOO_BIG)
    try:
        value = load_json(text, max_depth)
    except JsonBodyError as exc:
        raise SocketError(f"unreadable message: {exc}", unreadable) from None
    if not isinstance(value, dict):
        raise SocketError("a message must be a JSON object", unreadable)
    return value


def compact_json(message: dict[str, Any]) -> str:
    """A message as the platforms send theirs: JSON without spaces."""
    return json.dumps(message, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the platform reports (it detects them: no in-band detection on these doors)."""

    digit: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message we pass over (platforms add events): `kind` names what, for logging once per kind;
    `reason` says why."""

    kind: str
    reason: str


def key_pressed(digit: object) -> Dtmf | Ignored:
    """A reported key, or `Ignored` for one no keypad menu uses (A-D, or not a key at all)."""
    if isinstance(digit, str) and len(digit) == 1 and digit in DTMF_KEYS:
        return Dtmf(digit)
    return Ignored("dtmf digit", f"dtmf digit {str(digit)[:10]!r} is not one of {DTMF_KEYS}")


def unknown_event(event: object) -> Ignored:
    return Ignored(f"event {str(event)[:40]!r}", "an event this service does not use")


class IgnoredLog:
    """Logs each kind of ignored message once per socket, for a bounded number of kinds: a peer inventing
    names is not logged further."""

    def __init__(self, name: Callable[[], str], most: int = MAX_IGNORED_KINDS) -> None:
        self._name = name
        self._most = most
        self._seen: set[str] = set()

    def saw(self, ignored: Ignored) -> None:
        if ignored.kind not in self._seen and len(self._seen) < self._most:
            self._seen.add(ignored.kind)
            log.warning("%s: ignoring %s: %s (logged once)", self._name(), ignored.kind, ignored.reason)
