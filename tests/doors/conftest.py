"""The service in-process on 127.0.0.1 port 0, a stub Kore.ai bot, caller audio made at test time, and
what the streaming doors' tests check of what their callers hear."""

from __future__ import annotations

import itertools
import statistics
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from simulated_bot import SimulatedBot, simulated_bot

from adapter.calls.clock import Clock
from adapter.config import Settings
from adapter.doors.pacer import FRAME_S, LEAD_S, SLIN_8K, SLIN_16K, ULAW_8K
from adapter.server import SYNTHESIZER, create_app
from adapter.testing.line_peer import Arrival

STUB_BOT = "st-stub"
API_KEY = "door-test-key-0123456789"


def door_settings(**env: str) -> Settings:
    """Settings from `env` alone (not the developer's environment); PocketSphinx, the embedded bot."""
    return Settings.load(environ={"KORE_VOICE_ASR": "pocketsphinx", **env})


@asynccontextmanager
async def running(settings: Settings, clock: Clock | None = None, port: int | None = None,
                  **runner: Any) -> AsyncIterator[TestClient]:
    """The whole service (models, synthesizer, bot) serving on 127.0.0.1, port 0 unless given;
    `runner` options (e.g. `access_log_class`) go to its AppRunner."""
    server = TestServer(create_app(settings, clock=clock), port=port)
    await server.start_server(**runner)
    async with TestClient(server) as client:
        yield client


async def start_call(client: TestClient, **headers: str) -> dict[str, Any]:
    resp = await client.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def keys(client: TestClient, call_id: str, digits: str, **headers: str) -> Any:
    return await client.post(f"/v1/calls/{call_id}/turns", json={"digits": digits}, headers=headers)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedBot]:
    """The Kore.ai simulator playing the test module's `BOT` script (the banking IVR if it has none)."""
    async with simulated_bot(getattr(request.module, "BOT", None)) as simulated:
        yield simulated


# --- a stub Kore.ai bot: answers by what the caller pressed, fails on demand ---------------------------


# What a careless bot puts in its error text: its internal address, and the Authorization it was sent.
STUB_INTERNAL_ADDRESS = "http://10.9.8.7:8443/bot"


def stub_answer(body: dict[str, Any], authorization: str = "") -> web.Response:
    """ON_CONNECT: a welcome (401 for caller +1401, 504 for +1504); keys "1": 400 (whose error text echoes
    `authorization` and names STUB_INTERNAL_ADDRESS), "2": 504, else an echo."""
    message = body.get("message", {})
    text = message.get("val")
    if text == "ON_CONNECT":
        caller = body.get("customData", {}).get("ani")
        if caller in ("+1401", "+1504"):
            return web.json_response({"errors": [{"msg": "stub refuses", "code": 1}]}, status=int(caller[2:]))
        text = "Stub bot here."
    elif text == "SESSION_CLOSURE":
        return web.json_response({})
    elif text == "1":
        failure = f"stub failure at {STUB_INTERNAL_ADDRESS} for Authorization: {authorization}"
        return web.json_response({"errors": [{"msg": failure, "code": 1}]}, status=400)
    elif text == "2":
        return web.json_response({"errors": [{"msg": "stub failure", "code": 1}]}, status=504)
    else:
        text = f"You pressed {text}."
    return web.json_response({"data": [{"type": "text", "val": text}]})


@pytest.fixture(scope="module")
def stub_requests() -> list[dict[str, Any]]:
    return []


@asynccontextmanager
async def stub_kore(requests: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A webhook on port 0 answering as `stub_answer`; yields KORE_WEBHOOK_URL."""

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        return stub_answer(body, request.headers.get("Authorization", ""))

    app = web.Application()
    app.router.add_post(f"/chatbot/v2/webhook/{STUB_BOT}", webhook)
    async with TestServer(app) as server:
        yield str(server.make_url(f"/chatbot/v2/webhook/{STUB_BOT}"))


def stub_settings(url: str, **env: str) -> Settings:
    return door_settings(KORE_WEBHOOK_URL=url, KORE_CLIENT_ID="cs-door-test", KORE_CLIENT_SECRET="s" * 32, **env)


# --- caller audio -----------------------------------------------------------------------------------


def run(*cmd: str | Path) -> bytes:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True).stdout


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("door-audio")


@pytest.fixture(scope="session")
def tone_wav(media: Path) -> Callable[[str], Path]:
    """`tone_wav("1")`: keypad tones made by sox (8 kHz 16-bit WAV), 100 ms each with 100 ms gaps."""
    low = dict(zip("123456789*0#", [697] * 3 + [770] * 3 + [852] * 3 + [941] * 3, strict=True))
    high = dict(zip("123456789*0#", [1209, 1336, 1477] * 4, strict=True))

    def make(digits: str) -> Path:
        out = media / f"keys-{digits.replace('#', 'hash').replace('*', 'star')}.wav"
        if not out.exists():
            parts = []
            for key in digits:
                part = media / f"key-{ord(key)}.wav"
                run("sox", "-n", "-r", "8000", "-b", "16", "-c", "1", part, "synth", "0.1",
                    "sine", str(low[key]), "sine", str(high[key]), "remix", "1v0.3,2v0.3", "pad", "0.1", "0.1")
                parts.append(part)
            run("sox", *parts, out)
        return out

    return make


def say_wav(text: str, folder: Path) -> Path:
    """espeak-ng saying `text`, as a 16-bit WAV at espeak's own rate, in `folder`."""
    out = folder / f"say-{abs(hash(text))}.wav"
    if not out.exists():
        run("espeak-ng", "-v", "en-us", "-s", "140", "-w", out, text)
    return out


@pytest.fixture(scope="session")
def spoken(media: Path) -> Callable[[str], Path]:
    """`spoken("check balance")`: `say_wav` into the session's audio folder."""
    return lambda text: say_wav(text, media)


@pytest.fixture(scope="session")
def converted(media: Path) -> Callable[..., bytes]:
    """`converted(wav, "x.ulaw", "-e", "mu-law")`: a WAV turned into another file by sox (or ffmpeg for
    names ending in .mp3/.ogg), as bytes."""

    def convert(wav: Path, name: str, *options: str) -> bytes:
        out = media / f"{wav.stem}-{name}"
        if not out.exists():
            if out.suffix in (".mp3", ".ogg"):
                run("ffmpeg", "-v", "error", "-y", "-i", wav, *options, out)
            else:
                run("sox", wav, *options, out)
        return out.read_bytes()

    return convert


# --- a streaming door's caller, and what it hears ------------------------------------------------------

#: sox's raw formats of the phone lines: Twilio (μ-law 8 kHz), AudioSocket (slin 8 kHz), Vonage (L16 16 kHz)
LINE_ULAW_8K = ("-e", "mu-law", "-r", "8000")
LINE_SLIN_8K = ("-e", "signed", "-b", "16", "-L", "-r", "8000")
LINE_SLIN_16K = ("-e", "signed", "-b", "16", "-L", "-r", "16000")
#: a stall, not jitter, on a busy 2-core box shared with other work (the 40 ms goal is bench/capacity.py's)
MAX_GAP_S = 0.25
LEAD = round(LEAD_S / FRAME_S)


def line_speech(folder: Path, text: str, line: tuple[str, ...]) -> bytes:
    """espeak-ng (en-us+f2) saying `text` as a phone line carries it (`line`: sox's raw format), 0.2 s of
    silence after; the line's own silence follows, sent by the peer. Call it outside the event loop
    (espeak-ng and sox are child processes waited for)."""
    out = folder / f"line-{'_'.join(line)}-{text.replace(' ', '_')}.raw"
    if not out.exists():
        wav = out.with_suffix(".wav")
        run("espeak-ng", "-v", "en-us+f2", "-s", "140", "-w", wav, text)
        run("sox", wav, "-c", "1", *line, "-t", "raw", out, "pad", "0.2", "0")
    return out.read_bytes()


async def rendered(client: TestClient, text: str, out_format: str) -> bytes:
    """A prompt as the service renders it for a door (`out_format`: "ulaw8k", "slin8k", "slin16k"), in
    whole 20 ms frames (from the synthesizer's cache when a call has rendered it already)."""
    fmt = {"ulaw8k": ULAW_8K, "slin8k": SLIN_8K, "slin16k": SLIN_16K}[out_format]
    return b"".join(fmt.frames(await client.app[SYNTHESIZER].render(text, out_format)))


def joined(arrivals: list[Arrival]) -> bytes:
    """The audio of `arrivals`, as one run."""
    return b"".join(a.audio for a in arrivals)


def assert_paced(arrivals: list[Arrival]) -> None:
    """Real time as they arrive: no gap, and never more than the lead ahead of real time. Real time is
    the frames' typical (median) arrival against their 20 ms slots, so one late first frame on a busy
    machine does not make the rest look early; a burst makes half of them early by half its length."""
    gaps = [b.at - a.at for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) < MAX_GAP_S, f"a {max(gaps) * 1000:.0f} ms gap between frames"
    offsets = [a.at - i * FRAME_S for i, a in enumerate(arrivals)]
    typical = statistics.median(offsets)
    ahead = max(typical - offset for offset in offsets) / FRAME_S
    assert ahead <= LEAD + 2, f"a burst {ahead:.1f} frames ahead of real time"


#: the streaming doors' test line: a keypad menu of these, each answered by its intent
LINE_OPTIONS = [{"title": "Check balance", "payload": "balance"}, {"title": "Talk to an agent", "payload": "agent"},
                {"title": "Goodbye", "payload": "bye"}]
LINE_INTENTS: dict[str, Any] = {
    "balance": {"keywords": ["balance"], "steps": [{"say": "You have ten dollars."}]},
    "agent": {"keywords": ["agent"], "steps": [{"voice": {"text": "Hold on.", "action": "transfer",
                                                          "to": "sip:agent@example.com"}}]},
    "bye": {"keywords": ["bye"], "steps": [{"voice": {"text": "Bye.", "action": "hangup"}}]},
}


def line_bot(options: tuple[dict[str, str], ...] = (), intents: dict[str, Any] | None = None) -> dict[str, Any]:
    """The simulator's script for the test line, with more menu `options` and their `intents`."""
    return {"name": "Test line", "welcome": [{"menu": {"text": "Hello.", "options": [*LINE_OPTIONS, *options]}}],
            "fallback": [{"say": "Sorry?"}], "intents": {**LINE_INTENTS, **(intents or {})}}
