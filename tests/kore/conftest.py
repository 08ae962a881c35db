"""Shared fixtures for the Kore.ai tests: fake time, a simulator on port 0, clients aimed at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.calls.clock import SystemClock
from adapter.config import Secret
from adapter.kore.client import KoreClient
from adapter.kore.settings import KoreSettings
from adapter.kore.simulator import Simulator, SimulatorConfig
from adapter.kore.simulator.script import Script, parse_script

from .fakes import BOT_ID, CLIENT_ID, SECRET, FakeTime


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """One 2048-bit key for the suite, made outside any event loop: a key takes 50-500 ms of CPU to find,
    which the loop guard would count against whichever test made it inside its coroutine."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


SimulatorFactory = Callable[..., Awaitable[tuple[Simulator, str]]]


@pytest.fixture
def start_simulator(aiohttp_server: Any, fake_time: FakeTime) -> SimulatorFactory:
    """`await start_simulator(script=..., **config)` → (simulator, base URL) on 127.0.0.1, port 0."""

    async def start(script: Script | dict[str, Any] | None = None, **config: Any) -> tuple[Simulator, str]:
        if isinstance(script, dict):
            script = parse_script(script)
        options: dict[str, Any] = {"client_secret": SECRET, "client_id": CLIENT_ID, "bot_id": BOT_ID}
        options.update(config)
        simulator = Simulator(SimulatorConfig(**options), script, clock=fake_time)
        server: TestServer = await aiohttp_server(simulator.create_app())
        return simulator, str(server.make_url("")).rstrip("/")

    return start


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


ClientFactory = Callable[..., KoreClient]


@pytest.fixture
def make_client(http: aiohttp.ClientSession, fake_time: FakeTime) -> ClientFactory:
    """`make_client(base_url, **settings)` → a KoreClient on fake time (`real_time=True` to opt out)."""

    def make(base_url: str, *, real_time: bool = False, secret: Secret = SECRET, **settings: Any) -> KoreClient:
        kore = dataclasses.replace(KoreSettings(), **settings).for_simulator(base_url, CLIENT_ID, secret, BOT_ID)
        return KoreClient(kore, http, SystemClock() if real_time else fake_time)

    return make


StubFactory = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]


@pytest.fixture
def stub_server(aiohttp_server: Any) -> StubFactory:
    """`await stub_server(handler)` → base URL of a server answering every path with `handler`."""

    async def start(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/")

    return start
