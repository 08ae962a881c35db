"""A whole REST call over real sockets: `kore-voice serve --port 0` as a subprocess, the embedded demo bot.

Welcome, a spoken menu choice (espeak-ng), a keypad entry, hang-up; then a menu choice by key that
transfers; the service stops on SIGTERM and its JSON log never shows the API key.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from adapter.audio.decode import decode_audio

KEY = "e2e-key-0123456789abcdef"
KORE_VOICE = Path(sys.executable).with_name("kore-voice")


class Served:
    """The service as a subprocess: its base URL (read from its one ready line) and its log file."""

    def __init__(self, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
        env.update(KORE_VOICE_ASR="pocketsphinx", KORE_VOICE_API_KEY=KEY, KORE_VOICE_DRAIN_S="0")  # stop at once
        self.log = log
        with log.open("wb") as err:
            self._proc = subprocess.Popen([str(KORE_VOICE), "serve", "--port", "0"], stdout=subprocess.PIPE,
                                          stderr=err, env=env, text=True)
        self.line = self._proc.stdout.readline()
        assert "with the embedded demo bot" in self.line, self.line or log.read_text()
        self.url = self.line.split("serving on ")[1].split()[0]

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; the exit status."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        return self._proc.wait(timeout=30)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path / "stderr.log")
    try:
        yield served
    finally:
        served.stop()


async def test_a_whole_call_over_rest(service: Served, spoken: Callable[[str], Path]):
    url = service.url
    async with aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}) as resp:
            assert resp.status == 201
            call = await resp.json()
        assert [o["digit"] for o in call["welcome"]["menu"]] == ["1", "2", "3"]
        async with http.get(call["welcome"]["audio_url"]) as resp:
            assert decode_audio(await resp.read(), resp.headers["Content-Type"]).duration_s > 5
        turns = f"/v1/calls/{call['id']}/turns"

        wav = await asyncio.to_thread(spoken, "transfer money")  # espeak-ng, sox: off the loop
        async with http.post(turns, data=wav.read_bytes(),
                             headers={"Content-Type": "audio/wav"}) as resp:
            said = await resp.json()
        assert (said["input"], said["transcript"].lower()) == ("speech", "transfer money")
        assert "8 digit account number" in said["bot"]["texts"][0]

        async with http.post(turns, data={"Digits": "12345678#"}, headers={"Accept": "audio/wav"}) as resp:
            assert resp.headers["X-Transcript"] == "12345678" and resp.headers["X-End-Of-Call"] == "false"
            reply = decode_audio(await resp.read(), resp.headers["Content-Type"])
        assert reply.rate == 16000 and reply.duration_s > 2

        async with http.delete(f"/v1/calls/{call['id']}") as resp:
            assert resp.status == 204
        async with http.post(turns, json={"digits": "1"}) as resp:
            assert resp.status == 409

        async with http.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}) as resp:
            second = await resp.json()
        async with http.post(f"/v1/calls/{second['id']}/turns", json={"digits": "3"}) as resp:
            moved = await resp.json()
        assert (moved["transcript"], moved["end_of_call"]) == ("agent", True)
        assert moved["transfer_to"] == "sip:agent@demo-bank.example"

    async with aiohttp.ClientSession(url) as anonymous, anonymous.post("/v1/calls", json={}) as resp:
        assert resp.status == 401
    assert await asyncio.to_thread(service.stop) == 0  # waits for the process to exit
    log = service.log.read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert [(a["method"], a["status"]) for a in access if a["path"] == "/v1/calls"] == [
        ("POST", 201), ("POST", 201), ("POST", 401)]
    assert KEY not in log
