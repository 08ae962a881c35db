"""A Twilio call's id (`CallSid`, `CA` + 32 hex) and the Kore user id its conversation gets.

Both Twilio modes name the conversation `twilio-<CallSid>`, so a status callback finds the call
whichever mode carries its audio, and a retried webhook finds the call it already started.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from adapter.api_errors import ApiError

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
PREFIX = "twilio-"


def call_sid(params: Mapping[str, str]) -> str:
    """The request's `CallSid`.

    Raises:
        ApiError: 400 when it is missing or not shaped like a Twilio call id.
    """
    sid = params.get("CallSid", "")
    if not _CALL_SID.match(sid):
        raise ApiError(400, "bad_request", '"CallSid" must be a Twilio call id: CA and 32 hex digits')
    return sid


def user_id(sid: str) -> str:
    """The conversation's (and Kore's `from.id`) id for a Twilio call."""
    return PREFIX + sid
