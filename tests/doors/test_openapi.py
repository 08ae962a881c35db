"""/openapi.json tells the truth: its routes are the app's, and every status it lists is answered, with
a body that fits its schema. One recipe per documented (method, path, status) makes that status happen.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

from adapter.audio.encode import encode_audio
from adapter.audio.pcm import Pcm
from adapter.server import create_app, openapi_document

from .conftest import API_KEY, door_settings, keys, running, start_call, stub_kore, stub_settings

DOC = openapi_document()
#: routes a phone platform calls with its own documented protocol: not ours to describe
PLATFORMS = ("/twilio/", "/vonage/")
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Apps:
    demo: TestClient  # the embedded demo bot, 3 turns a minute per call
    stub: TestClient  # a stub Kore.ai bot that fails on demand, an API key, at most 2 calls
    unready: TestClient  # a bot nobody answers for


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def apps() -> AsyncIterator[Apps]:
    async with (running(door_settings(KORE_VOICE_TURNS_PER_MINUTE="3")) as demo,
                stub_kore([]) as url,
                running(stub_settings(url, KORE_VOICE_API_KEY=API_KEY, KORE_VOICE_MAX_CALLS="2")) as stub,
                running(stub_settings("http://127.0.0.1:9/chatbot/v2/webhook/st-gone")) as unready):
        yield Apps(demo, stub, unready)


NEW_CALL = {"from": "+15551230000", "to": "+15559870000"}
TURNS = "/v1/calls/{new}/turns"
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
AUDIOSOCKET_CALLS, AUDIOSOCKET_CALL = "/v1/audiosocket/calls", "/v1/audiosocket/{uuid}"
ASTERISK_UUID = "40325ec2-5efd-4bd3-805f-53576e581d13"
TEXT, MP3, OGG = {"Content-Type": "text/plain"}, {"Accept": "audio/mpeg"}, {"Accept": "audio/ogg"}
# One request each: (app, path, request options); {new} is a fresh call's id, {ended} an ended call's.
REQUESTS: dict[tuple[str, str, int], tuple[str, str, dict[str, Any]]] = {
    ("get", "/healthz", 200): ("demo", "/healthz", {}),
    ("get", "/readyz", 200): ("demo", "/readyz", {}),
    ("get", "/readyz", 503): ("unready", "/readyz", {}),
    ("get", "/metrics", 200): ("demo", "/metrics", {}),
    ("get", "/openapi.json", 200): ("demo", "/openapi.json", {}),
    ("get", "/", 200): ("stub", "/", {}),
    ("get", "/", 302): ("stub", "/", {"headers": {"Accept": "text/html"}, "allow_redirects": False}),
    ("get", "/favicon.ico", 204): ("stub", "/favicon.ico", {}),
    ("get", "/console", 200): ("stub", "/console", {}),
    ("post", "/v1/calls", 201): ("demo", "/v1/calls", {"json": NEW_CALL}),
    ("post", "/v1/calls", 400): ("demo", "/v1/calls", {"json": {"to": "+15559870000"}}),
    ("post", "/v1/calls", 401): ("stub", "/v1/calls", {"json": NEW_CALL}),
    ("post", "/v1/calls", 415): ("demo", "/v1/calls", {"data": "from=+1", "headers": TEXT}),
    ("post", "/v1/calls", 502): ("stub", "/v1/calls", {"json": {"from": "+1401", "to": "+1666"}, "headers": AUTH}),
    ("post", "/v1/calls", 504): ("stub", "/v1/calls", {"json": {"from": "+1504", "to": "+1666"}, "headers": AUTH}),
    ("delete", "/v1/calls/{call_id}", 204): ("demo", "/v1/calls/{new}", {}),
    ("delete", "/v1/calls/{call_id}", 401): ("stub", "/v1/calls/call-0", {}),
    ("delete", "/v1/calls/{call_id}", 404): ("demo", "/v1/calls/call-unknown", {}),
    ("post", "/v1/calls/{call_id}/turns", 200): ("demo", TURNS, {"json": {"digits": "1"}}),
    ("post", "/v1/calls/{call_id}/turns", 400): ("demo", TURNS, {"json": {"digits": "12x"}}),
    ("post", "/v1/calls/{call_id}/turns", 404): ("demo", "/v1/calls/call-unknown/turns", {"json": {"digits": "1"}}),
    ("post", "/v1/calls/{call_id}/turns", 409): ("demo", "/v1/calls/{ended}/turns", {"json": {"digits": "1"}}),
    ("post", "/v1/calls/{call_id}/turns", 413): ("demo", TURNS, {
        "data": encode_audio(Pcm.silence(61.0, 8000), "wav8k"), "headers": {"Content-Type": "audio/wav"}}),
    ("post", "/v1/calls/{call_id}/turns", 415): ("demo", TURNS, {"data": "one", "headers": TEXT}),
    ("get", "/v1/calls/{call_id}/audio/{n}", 200): ("demo", "/v1/calls/{new}/audio/0", {"headers": MP3}),
    ("get", "/v1/calls/{call_id}/audio/{n}", 400): ("demo", "/v1/calls/{new}/audio/0?format=flac", {}),
    ("get", "/v1/calls/{call_id}/audio/{n}", 401): ("stub", "/v1/calls/call-0/audio/0", {}),
    ("get", "/v1/calls/{call_id}/audio/{n}", 404): ("demo", "/v1/calls/{new}/audio/7", {}),
    ("get", "/v1/calls/{call_id}/audio/{n}", 406): ("demo", "/v1/calls/{new}/audio/0", {"headers": OGG}),
    ("get", "/v1/stream", 101): ("demo", "/v1/stream", {"headers": UPGRADE}),
    ("get", "/v1/stream", 400): ("demo", "/v1/stream", {}),
    ("get", "/v1/stream", 401): ("stub", "/v1/stream?key=wrong", {"headers": UPGRADE}),
    ("post", AUDIOSOCKET_CALLS, 201): ("demo", AUDIOSOCKET_CALLS, {"json": {"uuid": ASTERISK_UUID, **NEW_CALL}}),
    ("post", AUDIOSOCKET_CALLS, 400): ("demo", AUDIOSOCKET_CALLS, {"json": {"uuid": "not-a-uuid"}}),
    ("post", AUDIOSOCKET_CALLS, 401): ("stub", AUDIOSOCKET_CALLS, {"json": {"uuid": ASTERISK_UUID}}),
    ("get", AUDIOSOCKET_CALL, 400): ("demo", "/v1/audiosocket/not-a-uuid", {}),
    ("get", AUDIOSOCKET_CALL, 401): ("stub", f"/v1/audiosocket/{ASTERISK_UUID}", {}),
    ("get", AUDIOSOCKET_CALL, 404): ("demo", "/v1/audiosocket/00000000-0000-4000-8000-000000000000", {}),
}


async def _call(client: TestClient, **headers: str) -> str:
    return (await start_call(client, **headers))["id"]


async def send(apps: Apps, method: str, name: str, path: str, options: dict[str, Any]) -> aiohttp.ClientResponse:
    client = getattr(apps, name)
    if "{new}" in path or "{ended}" in path:
        call_id = await _call(client)
        if "{ended}" in path:
            await client.delete(f"/v1/calls/{call_id}")
        path = path.replace("{new}", call_id).replace("{ended}", call_id)
    return await client.request(method, path, **options)


# Several requests each, against the stub bot (which needs the API key) or to flood a call.
Recipe = Callable[[Apps], Awaitable[aiohttp.ClientResponse]]
RECIPES: dict[tuple[str, str, int], Recipe] = {}


def recipe(method: str, path: str, status: int) -> Callable[[Recipe], Recipe]:
    def register(make: Recipe) -> Recipe:
        RECIPES[(method, path, status)] = make
        return make
    return register


@recipe("post", "/v1/calls", 503)
async def _too_many_calls(apps: Apps) -> aiohttp.ClientResponse:
    opened = []
    while (resp := await apps.stub.post("/v1/calls", json=NEW_CALL, headers=AUTH)).status == 201:
        opened.append((await resp.json())["id"])
    for call_id in opened:
        await apps.stub.delete(f"/v1/calls/{call_id}", headers=AUTH)
    return resp


async def _stub_turn(apps: Apps, digits: str, **headers: str) -> aiohttp.ClientResponse:
    call_id = await _call(apps.stub, **AUTH)
    resp = await keys(apps.stub, call_id, digits, **(headers or AUTH))
    await apps.stub.delete(f"/v1/calls/{call_id}", headers=AUTH)
    return resp


@recipe("post", "/v1/calls/{call_id}/turns", 401)
async def _turn_with_a_wrong_key(apps: Apps) -> aiohttp.ClientResponse:
    return await _stub_turn(apps, "5", Authorization="Bearer wrong")


@recipe("post", "/v1/calls/{call_id}/turns", 502)
async def _bot_failed(apps: Apps) -> aiohttp.ClientResponse:
    return await _stub_turn(apps, "1")


@recipe("post", "/v1/calls/{call_id}/turns", 504)
async def _bot_timed_out(apps: Apps) -> aiohttp.ClientResponse:
    return await _stub_turn(apps, "2")


async def _registered(apps: Apps) -> str:
    call = str(uuid.uuid4())
    assert (await apps.demo.post(AUDIOSOCKET_CALLS, json={"uuid": call})).status == 201
    return call


@recipe("post", AUDIOSOCKET_CALLS, 409)
async def _registered_twice(apps: Apps) -> aiohttp.ClientResponse:
    return await apps.demo.post(AUDIOSOCKET_CALLS, json={"uuid": await _registered(apps)})


@recipe("get", AUDIOSOCKET_CALL, 200)
async def _a_registered_call(apps: Apps) -> aiohttp.ClientResponse:
    return await apps.demo.get(f"/v1/audiosocket/{await _registered(apps)}")


@recipe("post", "/v1/calls/{call_id}/turns", 429)
async def _turn_flood(apps: Apps) -> aiohttp.ClientResponse:
    call_id = await _call(apps.demo)
    for _ in range(3):
        await keys(apps.demo, call_id, "9")
    return await keys(apps.demo, call_id, "9")


def documented() -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(method, path, int(status)): answer
            for path, operations in DOC["paths"].items()
            for method, operation in operations.items()
            for status, answer in operation["responses"].items()}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = DOC["components"][section][name]
    return node


def test_the_documented_routes_are_the_apps_routes():
    app = create_app(door_settings())
    # The Twilio and Vonage doors speak their platform's protocol (TwiML or NCCO webhooks, Media Streams or
    # the Voice API's WebSocket), documented by Twilio and Vonage (adapter/doors/vonage/README.md).
    served = {(route.method.lower(), resource.canonical) for resource in app.router.resources()
              for route in resource if route.method != "HEAD" and not resource.canonical.startswith(PLATFORMS)}
    assert served == {(method, path) for path, ops in DOC["paths"].items() for method in ops}


def test_every_documented_status_has_a_recipe():
    assert not set(REQUESTS) & set(RECIPES)
    assert set(REQUESTS) | set(RECIPES) == set(documented())


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("key", sorted([*REQUESTS, *RECIPES]), ids=lambda key: f"{key[0]} {key[1]} {key[2]}")
async def test_the_documented_status_is_answered_as_documented(apps: Apps, key: tuple[str, str, int]):
    resp = await (send(apps, key[0], *REQUESTS[key]) if key in REQUESTS else RECIPES[key](apps))
    body = await resp.read()
    assert resp.status == key[2], body[:300]
    answer = resolve(documented()[key])
    content = answer.get("content", {})
    if not content:
        assert body == b""
        return
    media = resp.content_type
    assert media in content, f"{media} is not documented for {key}"
    if media == "application/json":
        schema = {**resolve(content[media]["schema"]), "components": DOC["components"]}
        Draft202012Validator(schema).validate(await resp.json())
    for header in answer.get("headers", {}):
        if header not in ("X-End-Of-Call", "X-Transcript", "X-Transfer-To"):  # audio answers only
            assert header in resp.headers, f"{header} missing from {key}"

