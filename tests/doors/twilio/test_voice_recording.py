"""Fetching `RecordingUrl`s (the account's basic auth, a recording not stored yet, limits, failures) and
telling a recording with something said from silence."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from conversation.manual_clock import ManualClock

from adapter.audio.decode import decode_audio
from adapter.audio.errors import AudioTooLarge
from adapter.audio.limits import AudioLimits
from adapter.config_reader import Secret
from adapter.doors.twilio.recordings import (
    RecordingFetcher,
    RecordingNotStored,
    RecordingUnavailable,
    holds_input,
    loggable,
)
from adapter.doors.twilio.settings import TwilioSettings

from ..conftest import run
from .conftest import ACCOUNT_SID, TOKEN, on_clock, recording_host

ACCOUNT = TwilioSettings(account_sid=ACCOUNT_SID, auth_token=Secret(TOKEN))
TOKEN_ONLY = TwilioSettings(auth_token=Secret(TOKEN))  # TWILIO_ACCOUNT_SID is optional
LIMITS = AudioLimits(max_bytes=64 * 1024)


async def fetched(settings: TwilioSettings, url: str, account_sid: str | None = None,
                  clock: ManualClock | None = None) -> tuple[bytes, str | None]:
    clock = clock or ManualClock()
    async with aiohttp.ClientSession() as session:
        return await on_clock(clock, RecordingFetcher(session, settings, LIMITS, clock).fetch(url, account_sid))


async def test_a_recording_is_fetched_with_the_accounts_credentials_once_it_is_stored():
    async with recording_host() as host:
        clock = ManualClock()
        url, served = host.add(b"RIFF-audio", missing_first=3)
        assert await fetched(ACCOUNT, url, clock=clock) == (b"RIFF-audio", "audio/x-wav")
        assert served.requests == 4 and clock.now() - 1000 == pytest.approx(0.25 + 0.5 + 1.0)  # backoff
        url, served = host.add(b"RIFF-audio")
        with pytest.raises(RecordingUnavailable, match="HTTP 401"):  # no account at all: no credentials sent
            await fetched(TOKEN_ONLY, url)


async def test_without_the_account_setting_the_signed_webhooks_account_sid_fetches():
    async with recording_host() as host:
        url, _ = host.add(b"RIFF-audio")
        assert await fetched(TOKEN_ONLY, url, account_sid=ACCOUNT_SID) == (b"RIFF-audio", "audio/x-wav")
        with pytest.raises(RecordingUnavailable, match="HTTP 401"):  # not an account id: not sent
            await fetched(TOKEN_ONLY, url, account_sid="AC:evil")
        assert await fetched(ACCOUNT, url, account_sid="AC" + "f" * 32)  # the setting wins


async def test_a_recording_never_stored_is_given_up_after_ten_seconds_of_bounded_retries():
    async with recording_host() as host:
        clock = ManualClock()
        url, served = host.add(b"", missing_first=1000)
        with pytest.raises(RecordingNotStored, match="HTTP 404 for 10 s"):
            await fetched(ACCOUNT, url, clock=clock)
        assert clock.now() - 1000 == pytest.approx(10.0)
        assert served.requests == 9  # at 0, .25, .75, 1.75, then every 2 s (the cap), and at 10 s


async def test_a_recording_that_fails_otherwise_is_unavailable_at_once():
    async with recording_host() as host:
        url, served = host.add(b"", status=503)
        with pytest.raises(RecordingUnavailable, match="HTTP 503") as failed:
            await fetched(ACCOUNT, url)
        assert served.requests == 1 and not isinstance(failed.value, RecordingNotStored)
    with pytest.raises(RecordingUnavailable, match="connect"):
        await fetched(ACCOUNT, "http://127.0.0.1:9/nothing-listens")


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_recording_over_the_byte_limit_is_refused(chunked):
    async with recording_host() as host:
        url, _ = host.add(b"\0" * (LIMITS.max_bytes + 1), chunked=chunked)
        with pytest.raises(AudioTooLarge, match="65536-byte limit"):
            await fetched(ACCOUNT, url)
        url, _ = host.add(b"\0" * LIMITS.max_bytes, chunked=chunked)
        assert len((await fetched(ACCOUNT, url))[0]) == LIMITS.max_bytes


def test_logged_urls_keep_no_credentials():
    assert loggable("https://AC1:secret@api.twilio.com/2010-04-01/Recordings/RE1?x=1#f") == (
        "https://api.twilio.com/2010-04-01/Recordings/RE1")


@pytest.mark.parametrize(("made_by", "holds"), [
    (("-n", "synth", "2", "sine", "0"), False),  # digital silence
    (("-n", "synth", "2", "whitenoise", "vol", "0.002"), False),  # a quiet line
    (("-n", "synth", "0.15", "sine", "770", "sine", "1336", "remix", "1v0.3,2v0.3", "pad", "0.5", "0.5"),
     True),  # the key 5
    (None, True),  # speech
])
def test_a_recording_holds_input_when_it_has_speech_or_keys(media: Path, recorded, made_by, holds):
    if made_by is None:
        data = recorded("check balance")
    else:
        out = media / f"recording-{abs(hash(made_by))}.wav"
        run("sox", *made_by[:1], "-r", "8000", "-b", "16", "-c", "1", out, *made_by[1:])
        data = out.read_bytes()
    assert holds_input(decode_audio(data)) is holds
