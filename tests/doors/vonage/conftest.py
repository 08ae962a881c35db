"""Vonage as the service's peer: settings with a signature secret, webhooks signed as Vonage signs them,
a local fake of the Voice API's `PUT /v1/calls/{uuid}`, and caller speech as 16 kHz L16."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from adapter.config import Settings
from adapter.testing.vonage_peer import answer_query, query_payload, signed_headers, status_event

from ..conftest import LINE_SLIN_16K, door_settings, line_speech

SECRET = "vonage-test-signature-secret-0123456789"
APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
CALLER, CALLED = "15551230000", "15559870000"


def vonage_settings(**env: str) -> Settings:
    return door_settings(VONAGE_SIGNATURE_SECRET=SECRET, **env)


def new_uuid() -> str:
    return str(uuid.uuid4())


async def answer(client: TestClient, call_uuid: str, secret: str = SECRET, **signing: Any) -> aiohttp.ClientResponse:
    """Vonage's GET to the answer URL, signed over its query."""
    query = answer_query(call_uuid, CALLER, CALLED)
    return await client.get("/vonage/answer", params=query,
                            headers=signed_headers(secret, query_payload(query), **signing))


async def ncco_endpoint(client: TestClient, call_uuid: str, **signing: Any) -> dict[str, Any]:
    resp = await answer(client, call_uuid, **signing)
    assert resp.status == 200, await resp.text()
    [connect] = await resp.json()
    [endpoint] = connect["endpoint"]
    return endpoint


async def event(client: TestClient, call_uuid: str, status: str, secret: str = SECRET) -> aiohttp.ClientResponse:
    body = json.dumps(status_event(call_uuid, status)).encode()
    return await client.post("/vonage/event", data=body,
                             headers={"Content-Type": "application/json", **signed_headers(secret, body)})


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """Made outside any event loop (finding a key takes the loop guard's whole budget)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def key_file(rsa_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vonage") / "private.key"
    path.write_bytes(rsa_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


class VoiceApi:
    """The Voice API's `PUT /v1/calls/{uuid}` on 127.0.0.1: records each request, answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (uuid, Authorization, body)
        self.status = 204

    async def update(self, request: web.Request) -> web.Response:
        self.requests.append((request.match_info["uuid"], request.headers.get("Authorization", ""),
                              await request.json()))
        return web.Response(status=self.status)


@asynccontextmanager
async def voice_api() -> AsyncIterator[tuple[VoiceApi, str]]:
    api = VoiceApi()
    app = web.Application()
    app.router.add_put("/v1/calls/{uuid}", api.update)
    async with TestServer(app) as server:
        yield api, str(server.make_url("")).rstrip("/")


@pytest.fixture(scope="session")
def line_audio(media: Path) -> Callable[[str], bytes]:
    """`line_audio("check balance")`: espeak-ng as Vonage carries it, raw 16 kHz 16-bit little-endian."""
    return lambda text: line_speech(media, text, LINE_SLIN_16K)
