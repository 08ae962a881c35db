"""The caller's `<Record>` recordings: fetched from Twilio, and told apart from silence.

Twilio saves silent recordings by default and may not have stored a recording yet when its action
request arrives, or ever (warning 16102: a recording detected as silent is not stored). So a
recording that stays missing for `RECORDING_WAIT_S`, and one that holds no voiced speech and no
keypad tones, is the caller saying nothing (no input), not speech we failed to catch (no match).
"""

from __future__ import annotations

import base64
import re

import aiohttp
from yarl import URL

from adapter.audio.dtmf import detect_keys
from adapter.audio.errors import AudioTooLarge
from adapter.audio.limits import AudioLimits
from adapter.audio.pcm import Pcm
from adapter.audio.vad import VoiceActivity
from adapter.calls.clock import Clock
from adapter.doors.twilio.settings import TwilioSettings

#: Twilio says a RecordingUrl "may not yet be accessible" when the action request comes: retry this long.
RECORDING_WAIT_S = 10.0
RECORDING_FETCH_S = 5.0  # one request's budget
FIRST_RETRY_S = 0.25
MAX_RETRY_S = 2.0  # the backoff doubles up to this, so a late recording is not waited for long
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


class RecordingUnavailable(Exception):
    """The recording could not be fetched (one line, no credentials)."""


class RecordingNotStored(RecordingUnavailable):
    """Still 404 after the wait: Twilio has not stored it (a silent recording is not, warning 16102)."""


class RecordingFetcher:
    """Fetches `RecordingUrl`s with the account's credentials (Twilio can require HTTP basic auth on
    media URLs, "Enforce HTTP Auth on Media URLs"), within the service's audio byte limit. Waits
    between retries on the injected clock. An app key holds it: tests serve recordings from
    127.0.0.1, another deployment may swap it."""

    def __init__(self, session: aiohttp.ClientSession, settings: TwilioSettings, limits: AudioLimits,
                 clock: Clock, wait_s: float = RECORDING_WAIT_S) -> None:
        self._session = session
        self._account_sid = settings.account_sid
        self._auth_token = settings.auth_token
        self._max_bytes = limits.max_bytes
        self._clock = clock
        self.wait_s = wait_s

    def _headers(self, webhook_account_sid: str | None) -> dict[str, str]:
        """Basic auth with TWILIO_ACCOUNT_SID, else the signed webhook's `AccountSid` (the setting is
        optional), and the Auth Token. aiohttp drops the header on a redirect to another host."""
        sid = self._account_sid or (webhook_account_sid if _ACCOUNT_SID.match(webhook_account_sid or "") else None)
        if not sid or self._auth_token is None:
            return {}
        credentials = f"{sid}:{self._auth_token.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    async def fetch(self, url: str, account_sid: str | None = None) -> tuple[bytes, str | None]:
        """The recording's bytes and Content-Type; `account_sid` is the webhook's `AccountSid`.

        Raises:
            RecordingNotStored: still 404 after `wait_s`.
            RecordingUnavailable: no answer, or another error status.
            AudioTooLarge: over the byte limit.
        """
        headers = self._headers(account_sid)
        deadline = self._clock.now() + self.wait_s
        delay = FIRST_RETRY_S
        timeout = aiohttp.ClientTimeout(total=RECORDING_FETCH_S)
        while True:
            try:
                async with self._session.get(url, headers=headers, timeout=timeout) as resp:
                    if resp.status == 200:
                        return await self._body(resp), resp.headers.get("Content-Type")
                    if resp.status != 404:
                        raise RecordingUnavailable(f"HTTP {resp.status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise RecordingUnavailable(" ".join(str(exc).split()) or type(exc).__name__) from None
            left = deadline - self._clock.now()
            if left <= 0:
                raise RecordingNotStored(f"HTTP 404 for {self.wait_s:g} s")
            await self._clock.sleep(min(delay, left))
            delay = min(2 * delay, MAX_RETRY_S)

    async def _body(self, resp: aiohttp.ClientResponse) -> bytes:
        too_large = AudioTooLarge(f"the recording is over the {self._max_bytes}-byte limit")
        if resp.content_length is not None and resp.content_length > self._max_bytes:
            raise too_large
        data = bytearray()
        async for chunk in resp.content.iter_any():
            data += chunk
            if len(data) > self._max_bytes:
                raise too_large
        return bytes(data)


def holds_input(pcm: Pcm) -> bool:
    """Whether a recording holds voiced speech or keypad tones (the tones are looked for only in a
    recording without speech: the conversation looks again in the others). Blocking: off the loop."""
    return bool(VoiceActivity(pcm.rate).speech_segments(pcm)) or bool(detect_keys(pcm))


def loggable(url: str) -> str:
    """A URL without credentials or query, for logs."""
    parsed = URL(url)
    return str(parsed.with_user(None).with_query(None).with_fragment(None))
