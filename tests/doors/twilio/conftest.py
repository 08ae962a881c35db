"""Twilio as the service's peer: settings with an account, webhooks signed as Twilio signs them, call
ids, and recordings served as Twilio serves `RecordingUrl`s (basic auth), from 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conversation.manual_clock import ManualClock
from twilio.request_validator import RequestValidator

from adapter.config import Settings

from ..conftest import door_settings, run

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-test-auth-token-0123456789"
CALLER, CALLED = "+15551230000", "+15559870000"
FORM = "application/x-www-form-urlencoded"
T = TypeVar("T")


def twilio_settings(**env: str) -> Settings:
    """`door_settings` with a Twilio account (PocketSphinx, the embedded bot unless `env` names one)."""
    return door_settings(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TOKEN, **env)


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


class TwilioPeer:
    """Sends webhooks to the service as Twilio would: to a path, or to an absolute URL the service put
    in its TwiML, signed over the URL Twilio calls (`public_url` + path, else the test server's)."""

    def __init__(self, client: TestClient, public_url: str | None = None, token: str = TOKEN) -> None:
        self.client = client
        self.base = (public_url or str(client.make_url("/"))).rstrip("/")
        self.token = token

    def url(self, target: str) -> str:
        """The URL Twilio calls for a path or an absolute URL."""
        return target if target.startswith(("http://", "https://")) else self.base + target

    def path(self, target: str) -> str:
        """What to request on the test server for a path or an absolute URL of ours."""
        url = self.url(target)
        assert url.startswith(self.base + "/"), f"{url} is not under {self.base}"
        return url[len(self.base):]

    def sign(self, url: str, params: Mapping[str, str], token: str | None = None) -> str:
        return RequestValidator(token or self.token).compute_signature(url, dict(params))

    async def post(self, target: str, params: Mapping[str, str], *, signature: str | None = None,
                   headers: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        """A form POST signed over `params` (unless `signature` is given: "" sends none)."""
        signature = self.sign(self.url(target), params) if signature is None else signature
        sent = {"Content-Type": FORM, **({"X-Twilio-Signature": signature} if signature else {}), **(headers or {})}
        return await self.client.post(self.path(target), data=dict(params), headers=sent)

    async def get(self, target: str) -> aiohttp.ClientResponse:
        """What Twilio's media player fetches (unsigned)."""
        return await self.client.get(self.path(target))


def call_params(sid: str, **extra: str) -> dict[str, str]:
    """The standard parameters of a voice webhook (specs/telephony.md §1.1) plus `extra`."""
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": CALLER, "To": CALLED, "CallStatus": "in-progress",
            "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


# --- recordings -------------------------------------------------------------------------------------


@dataclass
class Served:
    body: bytes
    status: int = 200
    missing_first: int = 0  # answer 404 this many times first, as a recording not stored yet
    requests: int = 0
    content_type: str = "audio/x-wav"
    chunked: bool = False  # sent without a Content-Length


class RecordingHost:
    """RecordingUrls on 127.0.0.1 that want the account's basic auth, as Twilio's can."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.files: dict[str, Served] = {}
        self.auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()

    def add(self, body: bytes, **how: int | str) -> tuple[str, Served]:
        name = f"RE{uuid.uuid4().hex}"
        served = self.files[name] = Served(body, **how)  # type: ignore[arg-type]
        return str(self.server.make_url(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{name}")), served

    async def handle(self, request: web.Request) -> web.Response:
        served = self.files.get(request.match_info["name"])
        if served is None:
            return web.Response(status=404)
        served.requests += 1
        if request.headers.get("Authorization") != self.auth:
            return web.Response(status=401)
        if served.requests <= served.missing_first:
            return web.Response(status=404)
        if not served.chunked:
            return web.Response(status=served.status, body=served.body, content_type=served.content_type)
        resp = web.StreamResponse(status=served.status, headers={"Content-Type": served.content_type})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for start in range(0, len(served.body), 4096):
            await resp.write(served.body[start:start + 4096])
        await resp.write_eof()
        return resp


@asynccontextmanager
async def recording_host() -> AsyncIterator[RecordingHost]:
    app = web.Application()
    server = TestServer(app)
    host = RecordingHost(server)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Recordings/{name}", host.handle)
    async with server:
        yield host


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recordings() -> AsyncIterator[RecordingHost]:
    async with recording_host() as host:
        yield host


@pytest.fixture(scope="session")
def recorded(media: Path) -> Callable[[str], bytes]:
    """`recorded("check balance")`: espeak-ng (voice en-us+f2) saying it, as Twilio records a caller:
    an 8 kHz 16-bit mono WAV."""

    def make(text: str) -> bytes:
        out = media / f"twilio-{abs(hash(text))}.wav"
        if not out.exists():
            said = media / f"twilio-{abs(hash(text))}-said.wav"
            run("espeak-ng", "-v", "en-us+f2", "-s", "150", "-w", said, text)
            run("sox", said, "-r", "8000", "-b", "16", "-c", "1", out)
        return out.read_bytes()

    return make


async def on_clock(clock: ManualClock, work: Awaitable[T], horizon_s: float = 60.0) -> T:
    """Run `work`, moving `clock` to each timer due within `horizon_s` as soon as one is set: its waits
    (e.g. for a recording not stored yet) take no real time; later timers (a call's idle hang-up) stay."""
    task = asyncio.ensure_future(work)
    horizon = clock.now() + horizon_s
    while not task.done():
        due = [at for at, _, timer, _ in clock._timers if not timer.cancelled and at <= horizon]
        if due:
            clock.advance(min(due) - clock.now())
        await asyncio.wait({task}, timeout=0.005)
    return task.result()
