"""Request bodies as Kore.ai accepts them (specs §3.1-3.2); anything else is 400 Invalid Request Payload."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

V2_TYPES = ("text", "template", "event", "formData")
EVENTS = ("ON_CONNECT", "SESSION_CLOSURE")


class InvalidPayload(ValueError):
    """The body breaks the documented payload; the reason is for logs, Kore only says 400."""


@dataclass(frozen=True, slots=True)
class Incoming:
    user: str  # from.id
    text: str = ""
    event: str | None = None
    new_session: bool = False


def read_incoming(version: str, body: Any) -> Incoming:
    if not isinstance(body, dict):
        raise InvalidPayload("body is not a JSON object")
    user = _user(body.get("from"))
    session = body.get("session", {})
    if not isinstance(session, dict) or not isinstance(session.get("new", False), bool):
        raise InvalidPayload("session.new must be true or false")
    new = session.get("new", False)
    message = body.get("message")
    if not isinstance(message, dict):
        raise InvalidPayload("message is required")
    if version == "v1":
        if not isinstance(message.get("text"), str):
            raise InvalidPayload("message.text must be a string")
        return Incoming(user, message["text"], None, new)
    kind, val = message.get("type"), message.get("val")
    if kind not in V2_TYPES:
        raise InvalidPayload(f"message.type must be one of {', '.join(V2_TYPES)}")
    if kind == "event":
        if val not in EVENTS:
            raise InvalidPayload(f"event must be one of {', '.join(EVENTS)}")
        return Incoming(user, "", val, new)
    if kind == "text":
        if not isinstance(val, str) or not val.strip():
            raise InvalidPayload("a text message needs a non-empty val")
        return Incoming(user, val, None, new)
    if not isinstance(val, dict):
        raise InvalidPayload(f"a {kind} message needs an object val")
    return Incoming(user, json.dumps(val), None, new)


def _user(sender: Any) -> str:
    if not isinstance(sender, dict) or not isinstance(sender.get("id"), str) or not sender["id"].strip():
        raise InvalidPayload("from.id is required")
    return sender["id"]
