"""Whole Vonage calls in-process: signed `/vonage/answer` gives the NCCO, then `VonageSocket` plays Vonage on
the socket it names in real time (16 kHz L16 frames, notify echoed once played), `/vonage/event` ends
calls, and the bot's hang-up reaches a local fake of the Voice API.

The bot is the Kore.ai bot with a short script; caller speech is espeak-ng (`en-us+f2`) as 16 kHz
L16, recognised by PocketSphinx in the service's worker processes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import pytest_asyncio
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient
from simulated_bot import SimulatedBot

from adapter.app_state import CALLS
from adapter.testing.vonage_peer import VonageSocket, query_payload, signed_headers, status_event

from ..conftest import assert_paced, joined, rendered, running
from .conftest import (
    APPLICATION_ID,
    CALLED,
    CALLER,
    SECRET,
    VoiceApi,
    answer,
    event,
    ncco_endpoint,
    new_uuid,
    voice_api,
    vonage_settings,
)

module_loop = pytest.mark.asyncio(loop_scope="module")

BOT = {
    "name": "Test line",
    "welcome": [{"menu": {"text": "Hello.", "options": [{"title": "Check balance", "payload": "balance"},
                                                         {"title": "Goodbye", "payload": "bye"}]}}],
    "fallback": [{"say": "Sorry?"}],
    "intents": {
        "balance": {"keywords": ["balance"], "steps": [{"say": "You have ten dollars."}]},
        "bye": {"keywords": ["bye"], "steps": [{"voice": {"text": "Bye.", "action": "hangup"}}]},
    },
}
WELCOME = "Hello. For Check balance, press 1. For Goodbye, press 2."
BALANCE = "You have ten dollars."
OUT = "slin16k"  # the prompts' format on this door


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api() -> AsyncIterator[tuple[VoiceApi, str]]:
    async with voice_api() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(bot, api, key_file) -> AsyncIterator[TestClient]:
    settings = vonage_settings(**bot.env(), VONAGE_APPLICATION_ID=APPLICATION_ID,
                               VONAGE_PRIVATE_KEY_FILE=str(key_file), VONAGE_API_URL=api[1])
    async with running(settings) as client:
        yield client


@pytest.fixture(scope="module")
def check_balance(line_audio) -> bytes:
    """Made outside the event loop (espeak-ng and sox are child processes waited for)."""
    return line_audio("check balance")


async def call(service: TestClient, call_uuid: str | None = None) -> VonageSocket:
    return VonageSocket(service.session, await ncco_endpoint(service, call_uuid or new_uuid()))


# --- the NCCO and the webhooks ------------------------------------------------------------------------


@module_loop
async def test_the_ncco_connects_the_call_to_our_socket_with_its_identity_and_a_token(service):
    call_uuid = new_uuid()
    resp = await answer(service, call_uuid)
    assert resp.status == 200 and resp.content_type == "application/json"
    [connect] = await resp.json()
    assert connect["action"] == "connect"
    [endpoint] = connect["endpoint"]
    assert endpoint["type"] == "websocket"
    assert endpoint["uri"] == "ws" + str(service.make_url("/vonage/ws")).removeprefix("http")
    assert endpoint["content-type"] == "audio/l16;rate=16000"
    headers = endpoint["headers"]
    assert (headers["uuid"], headers["from"], headers["to"]) == (call_uuid, CALLER, CALLED)
    assert len(headers["token"]) > 40
    assert len(json.dumps(headers, separators=(",", ":"))) <= 512


@module_loop
async def test_the_longest_parties_still_fit_vonages_512_bytes_of_headers(service):
    query = {"uuid": new_uuid(), "from": "sip:" + "a" * 44, "to": "9" * 48}
    resp = await service.get("/vonage/answer", params=query, headers=signed_headers(SECRET, query_payload(query)))
    assert resp.status == 200
    headers = (await resp.json())[0]["endpoint"][0]["headers"]
    assert len(json.dumps(headers, separators=(",", ":"))) <= 512


@module_loop
async def test_the_answer_url_may_be_a_signed_post(service):
    body = json.dumps({"uuid": new_uuid(), "from": CALLER, "to": CALLED, "conversation_uuid": "CON-1"}).encode()
    resp = await service.post("/vonage/answer", data=body,
                              headers={"Content-Type": "application/json", **signed_headers(SECRET, body)})
    assert resp.status == 200
    assert (await resp.json())[0]["endpoint"][0]["headers"]["from"] == CALLER


@module_loop
@pytest.mark.parametrize("signing", [
    {"secret": "not-the-signature-secret-0123456789"},
    {"payload_hash": "0" * 64},
    {"iat": 1_000_000_000},
])
async def test_a_badly_signed_answer_is_401_in_one_json_line(service, signing):
    secret = signing.pop("secret", SECRET)
    resp = await answer(service, new_uuid(), secret, **signing)
    assert resp.status == 401
    text = await resp.text()
    assert text.count("\n") == 0 and json.loads(text)["error"]["code"] == "bad_signature"
    assert SECRET not in text


@module_loop
async def test_an_unsigned_webhook_is_401(service):
    query = {"uuid": new_uuid(), "from": CALLER, "to": CALLED}
    assert (await service.get("/vonage/answer", params=query)).status == 401
    body = json.dumps(status_event(new_uuid(), "completed")).encode()
    assert (await service.post("/vonage/event", data=body)).status == 401


@module_loop
async def test_a_query_altered_after_signing_is_401(service):
    query = {"to": CALLED, "from": CALLER, "uuid": new_uuid()}
    headers = signed_headers(SECRET, query_payload(query))
    resp = await service.get("/vonage/answer", params={**query, "from": "15550000000"}, headers=headers)
    assert resp.status == 401


@module_loop
@pytest.mark.parametrize("query", [{"uuid": "x"}, {"uuid": "../../etc"}, {"uuid": new_uuid(), "from": "1" * 49},
                                   {"uuid": new_uuid(), "to": "Ünknown"}, {"uuid": new_uuid(), "to": "a\nb"}])
async def test_an_answer_without_a_usable_call_is_400(service, query):
    resp = await service.get("/vonage/answer", params=query, headers=signed_headers(SECRET, query_payload(query)))
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_request"


# --- whole calls -----------------------------------------------------------------------------------------


@module_loop
async def test_a_caller_hears_the_welcome_answers_by_voice_and_hangs_up(service, bot, check_balance):
    call_uuid = new_uuid()
    async with await call(service, call_uuid) as peer:
        peer.talk()
        await peer.until(lambda p: p.echoed == [1], 30)
        [(prompt, welcome)] = peer.prompts()
        assert prompt == 1
        assert joined(welcome) == await rendered(service, WELCOME, OUT)
        assert_paced(welcome)

        spoken = await peer.say(check_balance)
        await peer.until(lambda p: len(p.echoed) == 2, 30)
        prompt, reply = peer.prompts()[1]
        assert prompt == 2 and reply[0].at > spoken
        assert joined(reply) == await rendered(service, BALANCE, OUT)
        assert_paced(reply)

        for _ in range(2):  # Vonage may send `completed` more than once: the call ends once
            resp = await event(service, call_uuid, "completed")
            assert resp.status == 204
        await peer.until(lambda p: p.closed, 10)
    assert peer.problems == []
    uid = "vonage-" + call_uuid
    assert bot.texts_from(uid) == ["balance"]
    assert bot.closures(uid) == 1
    first = bot.bodies(uid)[0]
    assert first["customData"]["ani"] == CALLER and first["from"]["id"] == uid
    assert service.app[CALLS].get(uid) is None


@module_loop
async def test_a_key_over_the_welcome_clears_it_and_the_bot_hangs_up_through_the_voice_api(
        service, bot, api, key_file, rsa_key):
    voice, _ = api
    call_uuid = new_uuid()
    async with await call(service, call_uuid) as peer:
        peer.talk()
        await peer.until(lambda p: len(p.timeline) > 10)
        await peer.dtmf("2")
        await peer.until(lambda p: p.closed, 30)
    kinds = [a.kind for a in peer.timeline]
    assert "clear" in kinds and kinds[-1] == "notify"
    assert bot.texts_from("vonage-" + call_uuid) == ["bye"]
    [(hung_up, authorization, body)] = [r for r in voice.requests if r[0] == call_uuid]
    assert body == {"action": "hangup"}
    claims = jwt.decode(authorization.removeprefix("Bearer "), rsa_key.public_key(), algorithms=["RS256"])
    assert claims["application_id"] == APPLICATION_ID and claims["exp"] > claims["iat"] and claims["jti"]
    assert peer.close_code == WSCloseCode.OK


@module_loop
async def test_a_token_is_single_use_and_only_for_its_call(service, bot):
    endpoint = await ncco_endpoint(service, new_uuid())
    async with VonageSocket(service.session, endpoint) as first:
        await first.until(lambda p: len(p.timeline) > 0)
        async with VonageSocket(service.session, endpoint) as again:
            await again.until(lambda p: p.closed, 10)
        assert again.close_code == WSCloseCode.POLICY_VIOLATION and "already used" in again.close_reason
        assert not first.closed
    other = await ncco_endpoint(service, new_uuid())
    forged = {**other, "headers": {**other["headers"], "token": endpoint["headers"]["token"]}}
    async with VonageSocket(service.session, forged) as wrong:
        await wrong.until(lambda p: p.closed, 10)
    assert wrong.close_code == WSCloseCode.POLICY_VIOLATION and "is for call" in wrong.close_reason
    assert bot.closures("vonage-" + other["headers"]["uuid"]) == 0


def connected(endpoint: dict[str, Any], **changed: Any) -> dict[str, Any]:
    return {"event": "websocket:connected", "content-type": endpoint["content-type"], **endpoint["headers"], **changed}


@module_loop
@pytest.mark.parametrize("bad,code,reason", [
    ("frame", WSCloseCode.UNSUPPORTED_DATA, "an audio frame of 320 bytes"),
    ("text", WSCloseCode.UNSUPPORTED_DATA, "not valid JSON"),
    ("connected again", WSCloseCode.POLICY_VIOLATION, "a second websocket:connected"),
])
async def test_a_message_that_breaks_the_protocol_closes_its_socket_and_hangs_up_its_call_only(
        service, bot, bad, code, reason):
    async with await call(service) as bystander:
        bystander.talk()
        async with await call(service) as peer:
            await peer.until(lambda p: len(p.timeline) > 0)
            assert peer.ws is not None
            if bad == "frame":
                await peer.ws.send_bytes(b"\0" * 320)
            elif bad == "text":
                await peer.ws.send_str("{not json")
            else:
                await peer.ws.send_str(json.dumps(connected(peer._endpoint)))
            await peer.until(lambda p: p.closed, 10)
        assert peer.close_code == code and reason in peer.close_reason
        uid = "vonage-" + peer._endpoint["headers"]["uuid"]
        await asyncio.wait_for(_until_closed(bot, uid), 10)
        await bystander.until(lambda p: p.echoed == [1], 30)  # the other call went on
        assert not bystander.closed


async def _until_closed(bot: SimulatedBot, uid: str) -> None:
    while bot.closures(uid) != 1:
        await asyncio.sleep(0.02)


@module_loop
@pytest.mark.parametrize("first,code", [
    ("audio", WSCloseCode.POLICY_VIOLATION),
    ({"content-type": "audio/l16;rate=8000"}, WSCloseCode.UNSUPPORTED_DATA),
    ({"token": "forged.token"}, WSCloseCode.POLICY_VIOLATION),
    ({"uuid": "no"}, WSCloseCode.POLICY_VIOLATION),
])
async def test_a_socket_that_starts_wrong_is_closed_before_any_conversation(service, first, code):
    endpoint = await ncco_endpoint(service, new_uuid())
    calls = len(service.app[CALLS])
    async with service.session.ws_connect(endpoint["uri"]) as ws:
        if first == "audio":
            await ws.send_bytes(b"\0" * 640)
        else:
            await ws.send_str(json.dumps(connected(endpoint, **first)))
        msg = await ws.receive(10)
        assert ws.close_code == code, msg
    assert len(service.app[CALLS]) == calls


@module_loop
async def test_speech_over_the_welcome_barges_in_and_the_reply_follows(service, bot, check_balance):
    call_uuid = new_uuid()
    async with await call(service, call_uuid) as peer:
        peer.talk()
        await peer.until(lambda p: len(p.timeline) > 10)
        await peer.say(check_balance)
        await peer.until(lambda p: 2 in p.echoed, 30)
        kinds = [a.kind for a in peer.timeline]
        assert kinds.index("clear") < kinds.index("notify")  # the welcome was cut before its notify
        assert joined(peer.prompts()[-1][1]) == await rendered(service, BALANCE, OUT)
    assert bot.texts_from("vonage-" + call_uuid) == ["balance"]


@module_loop
async def test_status_events_that_do_not_end_the_call_leave_it_and_ended_or_unknown_calls_are_204(service):
    call_uuid = new_uuid()
    async with await call(service, call_uuid) as peer:
        await peer.until(lambda p: len(p.timeline) > 0)
        for status in ("started", "ringing", "answered", "some-new-status"):
            assert (await event(service, call_uuid, status)).status == 204
        assert not peer.closed and service.app[CALLS].get("vonage-" + call_uuid) is not None
        assert (await event(service, call_uuid, "disconnected")).status == 204
        await peer.until(lambda p: p.closed, 10)
    assert (await event(service, new_uuid(), "completed")).status == 204


@module_loop
@pytest.mark.parametrize("body", [b"not json", b"[1]", json.dumps({"status": "completed", "uuid": "x"}).encode()])
async def test_an_event_that_is_not_a_call_event_is_400(service, body):
    resp = await service.post("/vonage/event", data=body, headers=signed_headers(SECRET, body))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"


@module_loop
async def test_unknown_socket_events_and_keys_are_ignored_and_logged_once(service, bot, caplog):
    call_uuid = new_uuid()
    async with await call(service, call_uuid) as peer:
        await peer.until(lambda p: len(p.timeline) > 0)
        assert peer.ws is not None
        for _ in range(3):
            await peer.ws.send_str(json.dumps({"event": "websocket:media:update", "x": 1}))
            await peer.dtmf("X")
        await peer.dtmf("1")
        await peer.until(lambda p: "clear" in [a.kind for a in p.timeline], 10)
        assert not peer.closed
    ignored = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(ignored) == 2, ignored
    assert bot.texts_from("vonage-" + call_uuid) == ["balance"]


@module_loop
async def test_a_refused_rest_hang_up_is_logged_and_the_socket_closes_all_the_same(service, api, caplog):
    voice, _ = api
    voice.status = 401
    try:
        async with await call(service) as peer:
            peer.talk()
            await peer.until(lambda p: len(p.timeline) > 10)
            await peer.dtmf("2")
            await peer.until(lambda p: p.closed, 30)
    finally:
        voice.status = 204
    assert peer.close_code == WSCloseCode.OK
    assert any("hang-up was refused: HTTP 401" in r.getMessage() for r in caplog.records)
