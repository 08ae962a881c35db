"""Twilio settings: the account's credentials, the door's mode, and which proxy headers to believe.

Without `TWILIO_AUTH_TOKEN` the Twilio door answers 503: an unsigned door would let anyone drive calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from aiohttp import web

from adapter.config_reader import Reader, Secret

MODES = ("twiml", "media-streams")
Mode = Literal["twiml", "media-streams"]
SPEECH = ("record", "gather")
Speech = Literal["record", "gather"]


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str | None = None
    auth_token: Secret | None = None  # signs every webhook (HMAC-SHA1) and the stream tokens
    # A Webhook Rule's SharedKey (HMAC-SHA256, X-Twilio-Webhooks-Signature-Settings), and its id if pinned.
    shared_key: Secret | None = None
    shared_key_id: str | None = None
    mode: Mode = "twiml"
    # Honour X-Forwarded-Proto / X-Forwarded-Host when rebuilding the URL Twilio signed (only behind
    # a proxy you run: anyone can send these headers). KORE_VOICE_PUBLIC_URL wins over both.
    trust_forwarded: bool = False
    # TwiML mode's <Record timeout>: whole seconds of silence that end the caller's turn. Twilio does not
    # say whether silence before the caller starts counts, so shorter risks cutting slow starters off.
    record_silence_s: int = 2
    # TwiML mode: who hears the caller's speech: "record" (our recogniser, from <Record>) or "gather"
    # (Twilio's own, <Gather input="dtmf speech">: faster, but not our engine).
    speech: Speech = "record"

    @classmethod
    def read(cls, r: Reader) -> TwilioSettings:
        return cls(
            account_sid=r.text("TWILIO_ACCOUNT_SID"),
            auth_token=r.secret("TWILIO_AUTH_TOKEN"),
            shared_key=r.secret("TWILIO_SHARED_KEY"),
            shared_key_id=r.text("TWILIO_SHARED_KEY_ID"),
            mode=cast(Mode, r.choice("KORE_VOICE_TWILIO_MODE", MODES, "twiml")),
            trust_forwarded=r.flag("KORE_VOICE_TRUST_FORWARDED", False),
            record_silence_s=r.integer("KORE_VOICE_TWILIO_RECORD_SILENCE_SECONDS", 2, minimum=1),
            speech=cast(Speech, r.choice("KORE_VOICE_TWILIO_SPEECH", SPEECH, "record")),
        )


TWILIO = web.AppKey("twilio_settings", TwilioSettings)
