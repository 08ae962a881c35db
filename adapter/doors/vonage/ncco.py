"""`/vonage/answer`: the NCCO that connects a call to our WebSocket, and the call it names.

Vonage asks the answer URL (GET with query parameters, or POST with a JSON body) with the call's
`uuid`, `from` and `to`; we answer one `connect` action whose websocket endpoint carries those and a
single-use stream token in its `headers` (Vonage hands the headers back in `websocket:connected`,
so the token is how the socket proves the signed answer request came first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapter.api_errors import ApiError
from adapter.json_body import JsonBodyError, load_json

CONTENT_TYPE = "audio/l16;rate=16000"
#: Vonage's limit on the endpoint's headers (specs/telephony.md §10.3)
MAX_HEADERS_BYTES = 512
#: a number or SIP user as Vonage reports it (printable ASCII): both at this length, with the uuid and the
#: token (which carries them again), still fit the headers' 512 bytes
MAX_PARTY_CHARS = 48
_UUID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
PREFIX = "vonage-"


@dataclass(frozen=True, slots=True)
class VonageCall:
    uuid: str
    caller: str
    called: str

    @property
    def user_id(self) -> str:
        """The conversation's (and the bot's `from.id`) id: never the caller's number."""
        return PREFIX + self.uuid


def call_uuid(value: object) -> str:
    """A Vonage call uuid, or 400."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise ApiError(400, "bad_request", '"uuid" must be a Vonage call uuid (8-64 letters, digits or dashes)')
    return value


def _party(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name, "")
    text = str(value)
    if not isinstance(value, str | int) or isinstance(value, bool) or len(text) > MAX_PARTY_CHARS \
            or not (text.isascii() and text.isprintable()):
        raise ApiError(400, "bad_request", f'"{name}" must be a number or name of at most {MAX_PARTY_CHARS} '
                       "printable ASCII characters")
    return text


def json_fields(payload: bytes) -> dict[str, Any]:
    """A webhook's JSON object body, or 400."""
    try:
        value = load_json(payload.decode("utf-8", "replace"))
    except JsonBodyError as exc:
        raise ApiError(400, "bad_request", f"the body must be JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return value


def answered_call(fields: Mapping[str, Any]) -> VonageCall:
    """The call an answer request describes.

    Raises:
        ApiError: 400 no valid uuid, or a `from`/`to` that is not short text.
    """
    return VonageCall(call_uuid(fields.get("uuid")), _party(fields, "from"), _party(fields, "to"))


def connect_ncco(call: VonageCall, socket_url: str, token: str) -> list[dict[str, Any]]:
    """One `connect` to our socket, 16 kHz L16 both ways, the call and its token in the headers.

    Raises:
        ApiError: 400 when the headers would pass Vonage's 512 bytes (cannot happen with bounded fields).
    """
    headers = {"uuid": call.uuid, "from": call.caller, "to": call.called, "token": token}
    if len(json.dumps(headers, separators=(",", ":")).encode()) > MAX_HEADERS_BYTES:
        raise ApiError(400, "bad_request", f"the call's identity does not fit Vonage's {MAX_HEADERS_BYTES} bytes")
    return [{"action": "connect",
             "endpoint": [{"type": "websocket", "uri": socket_url, "content-type": CONTENT_TYPE, "headers": headers}]}]
