"""Fetching `RecordingUrl`s: the account's basic auth, a recording not stored yet, limits, failures."""

from __future__ import annotations

import aiohttp
import pytest

from adapter.audio.errors import AudioTooLarge
from adapter.audio.limits import AudioLimits
from adapter.config_reader import Secret
from adapter.doors.twilio.settings import TwilioSettings
from adapter.doors.twilio.voice import RecordingFetcher, RecordingUnavailable, loggable

from .conftest import ACCOUNT_SID, TOKEN, recording_host

ACCOUNT = TwilioSettings(account_sid=ACCOUNT_SID, auth_token=Secret(TOKEN))
LIMITS = AudioLimits(max_bytes=64 * 1024)


async def fetched(settings: TwilioSettings, url: str, wait_s: float = 3.0) -> tuple[bytes, str | None]:
    async with aiohttp.ClientSession() as session:
        return await RecordingFetcher(session, settings, LIMITS, wait_s).fetch(url)


async def test_a_recording_is_fetched_with_the_accounts_credentials_once_it_is_stored():
    async with recording_host() as host:
        url, served = host.add(b"RIFF-audio", missing_first=2)
        assert await fetched(ACCOUNT, url) == (b"RIFF-audio", "audio/x-wav")
        assert served.requests == 3
        url, served = host.add(b"RIFF-audio")
        with pytest.raises(RecordingUnavailable, match="HTTP 401"):  # no account: no credentials sent
            await fetched(TwilioSettings(auth_token=Secret(TOKEN)), url)


async def test_a_recording_that_never_comes_or_fails_is_unavailable():
    async with recording_host() as host:
        url, _ = host.add(b"", missing_first=100)
        with pytest.raises(RecordingUnavailable, match="HTTP 404"):
            await fetched(ACCOUNT, url, wait_s=0.3)
        url, _ = host.add(b"", status=503)
        with pytest.raises(RecordingUnavailable, match="HTTP 503"):
            await fetched(ACCOUNT, url)
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
