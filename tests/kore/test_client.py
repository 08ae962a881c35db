"""KoreClient against the simulator (and a few stub servers) over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import jwt
import pytest
from aiohttp import web

from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.replies import CallAction, Menu, MenuOption
from adapter.config import Secret
from adapter.kore.client import KoreClient
from adapter.kore.errors import (
    KoreAnonymousNotAllowed,
    KoreAuthError,
    KoreBadRequest,
    KoreBadResponse,
    KoreBotTimeout,
    KorePollExpired,
    KoreRateLimited,
    KoreServerError,
    KoreTimeout,
    KoreUnavailable,
)

from .fakes import BOT_ID, CLIENT_ID, SECRET, FakeTime

CALL = CallInfo("call-0001", caller="+14155550100", called="+18005550199", door="test")

WELCOME_MENU = Menu((MenuOption("1", "Check balance", "balance"), MenuOption("2", "Transfer money", "transfer"),
                     MenuOption("3", "Talk to an agent", "agent")))


def slow_script(*steps: dict) -> dict:
    return {"welcome": [{"say": "Hello."}], "fallback": [{"say": "Sorry?"}],
            "intents": {"go": {"keywords": ["go"], "steps": list(steps)}}}


def webhook_posts(simulator) -> list:
    return [r for r in simulator.requests if r.method == "POST"]


# -- v2 sync ------------------------------------------------------------------------------------

async def test_v2_start_call_sends_on_connect_and_returns_the_welcome_menu(start_simulator, make_client):
    simulator, url = await start_simulator()
    reply = await make_client(url).start_call(CALL)

    assert reply.prompts == ("Welcome to Demo Bank.",
                             "How can I help you today? For Check balance, press 1. For Transfer money, press 2. "
                             "For Talk to an agent, press 3.")
    assert reply.texts == ("Welcome to Demo Bank.", "How can I help you today?")
    assert reply.menu == WELCOME_MENU
    assert (reply.pending, reply.end_of_task, reply.action) == (False, False, None)
    [request] = simulator.requests
    assert request.path == f"/chatbot/v2/webhook/{BOT_ID}"
    assert request.body["session"] == {"new": True}
    assert request.body["message"] == {"type": "event", "val": "ON_CONNECT"}
    assert request.body["from"]["id"] == "call-0001"
    assert request.body["to"] == {"id": BOT_ID}


async def test_jwt_claims_follow_the_spec_and_sub_is_the_from_id(start_simulator, make_client, fake_time):
    simulator, url = await start_simulator()
    await make_client(url).start_call(CALL)

    header = simulator.requests[0].headers["Authorization"]
    scheme, token = header.split(" ")
    assert scheme == "bearer"
    claims = jwt.decode(token, SECRET.reveal(), algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"appId": CLIENT_ID, "iss": CLIENT_ID, "sub": "call-0001",
                      "iat": int(fake_time.time()), "exp": int(fake_time.time()) + 3000}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


async def test_v2_text_carries_input_mode_confidence_ani_and_dnis(start_simulator, make_client):
    simulator, url = await start_simulator()
    client = make_client(url)
    await client.start_call(CALL)
    reply = await client.send_text(CALL, "what is my balance", InputMeta("speech", confidence=0.91))

    assert reply.prompts == ("Your checking account balance is $2,450.18.",
                             "Is there anything else? You can say transfer, agent, or goodbye.")
    assert reply.end_of_task is True
    body = simulator.requests[-1].body
    assert body["session"] == {"new": False}
    assert body["message"] == {"type": "text", "val": "what is my balance"}
    assert body["customData"] == {"ani": "+14155550100", "dnis": "+18005550199", "door": "test",
                                  "inputMode": "speech", "asrConfidence": 0.91}
    assert body["metaTags"] == {
        "sessionLevelTags": [{"name": "ani", "value": "+14155550100"}, {"name": "dnis", "value": "+18005550199"}],
        "messageLevelTags": [{"name": "inputMode", "value": "speech"}, {"name": "asrConfidence", "value": "0.91"}],
    }


async def test_keypad_entry_is_sent_as_plain_text_with_the_keys(start_simulator, make_client):
    simulator, url = await start_simulator()
    client = make_client(url)
    await client.start_call(CALL)
    asked = await client.send_text(CALL, "transfer", InputMeta("dtmf", keys="2"))
    assert asked.expect == ExpectedInput(speech=False, digits=DigitSpec(min=8, max=8, finish_on_key="#"))

    reply = await client.send_text(CALL, "12345678", InputMeta("dtmf", keys="12345678#"))
    assert reply.prompts == ("How many dollars would you like to send? Say the amount or enter it on the keypad.",)
    assert simulator.requests[-1].body["customData"]["dtmf"] == "12345678#"
    assert simulator.requests[-1].body["message"]["val"] == "12345678"


async def test_bot_call_actions_come_through(start_simulator, make_client):
    _, url = await start_simulator()
    client = make_client(url)
    await client.start_call(CALL)

    agent = await client.send_text(CALL, "agent please")
    bye = await client.send_text(CALL, "goodbye")

    assert agent.action == CallAction("transfer", "sip:agent@demo-bank.example")
    assert agent.prompts == ("Connecting you to an agent. Please hold.",)
    assert bye.action == CallAction("hangup")
    assert bye.prompts == ("Thank you for calling Demo Bank. Goodbye!",)


# -- v1 -----------------------------------------------------------------------------------------

async def test_v1_start_call_sends_the_seed_shape_and_reads_escaped_templates(start_simulator, make_client):
    simulator, url = await start_simulator()
    client = make_client(url, version="v1")
    reply = await client.start_call(CALL)

    assert reply.menu == WELCOME_MENU
    assert reply.prompts[0] == "Welcome to Demo Bank."
    request = simulator.requests[0]
    assert request.path == f"/chatbot/hooks/{BOT_ID}"
    assert request.body["session"] == {"new": True}
    assert request.body["message"] == {"text": "Hi", "attachments": []}
    assert request.body["from"] == {"id": "call-0001", "userInfo": {"firstName": "", "lastName": "", "email": ""}}
    assert request.body["to"] == {"id": BOT_ID, "groupInfo": {"id": "", "name": ""}}


async def test_v1_turn_and_end_call_sends_nothing_at_hang_up(start_simulator, make_client):
    simulator, url = await start_simulator()
    client = make_client(url, version="v1")
    await client.start_call(CALL)
    reply = await client.send_text(CALL, "balance", InputMeta("speech", confidence=0.8))
    await client.end_call(CALL)

    assert reply.prompts[0] == "Your checking account balance is $2,450.18."
    assert reply.end_of_task is True
    assert len(simulator.requests) == 2
    assert simulator.requests[1].body["messageLevelTags"] == [{"name": "inputMode", "value": "speech"},
                                                             {"name": "asrConfidence", "value": "0.80"}]


async def test_v1_slow_step_waits_for_the_whole_answer(start_simulator, make_client, fake_time):
    simulator, url = await start_simulator(slow_script({"say": "Wait."}, {"wait": 3}, {"say": "Done."}))
    reply = await make_client(url, version="v1").send_text(CALL, "go")

    assert reply.prompts == ("Wait.", "Done.")
    assert [r.method for r in simulator.requests] == ["POST"]


# -- polling ------------------------------------------------------------------------------------

async def test_polling_streams_the_first_batch_then_the_rest(start_simulator, make_client, fake_time):
    simulator, url = await start_simulator(slow_script({"say": "One moment."}, {"wait": 2}, {"say": "Done."}))
    client = make_client(url)

    batches = [reply async for reply in client.stream_text(CALL, "go")]

    assert [(b.prompts, b.pending, b.end_of_task) for b in batches] == [
        (("One moment.",), True, False), (("Done.",), False, True)]
    assert [r.method for r in simulator.requests] == ["POST", "GET", "GET", "GET"]
    assert fake_time.slept == [0.5, 1.0, 1.0]
    statuses = [r.status for r in simulator.requests]
    assert statuses == [200, 200, 200, 200]


async def test_send_text_merges_polled_batches_into_one_reply(start_simulator, make_client):
    _, url = await start_simulator(slow_script(
        {"say": "One moment."}, {"wait": 1},
        {"menu": {"text": "Which account?", "options": [{"title": "Savings"}, {"title": "Checking"}]}}))
    reply = await make_client(url).send_text(CALL, "go")

    assert reply.prompts == ("One moment.", "Which account? For Savings, press 1. For Checking, press 2.")
    assert reply.menu == Menu((MenuOption("1", "Savings", "Savings"), MenuOption("2", "Checking", "Checking")))
    assert (reply.pending, reply.end_of_task) == (False, True)
    assert len(reply.messages) == 2


async def test_polling_stops_at_the_deadline_with_what_was_said(start_simulator, make_client):
    _, url = await start_simulator(slow_script({"say": "One moment."}, {"wait": 60}, {"say": "Done."}))
    reply = await make_client(url).send_text(CALL, "go")

    assert reply.prompts == ("One moment.",)
    assert reply.pending is True


async def test_polling_with_nothing_said_by_the_deadline_is_a_timeout(start_simulator, make_client):
    _, url = await start_simulator(slow_script({"wait": 60}, {"say": "Done."}))
    with pytest.raises(KoreTimeout, match="still working after the 12 s turn deadline"):
        await make_client(url).send_text(CALL, "go")


async def test_polling_stops_when_the_call_ends(start_simulator, make_client):
    simulator, url = await start_simulator(slow_script({"say": "One moment."}, {"wait": 5}, {"say": "Done."}))
    client = make_client(url)
    stream = client.stream_text(CALL, "go")
    first = await anext(stream)
    await client.end_call(CALL)
    rest = [reply async for reply in stream]

    assert first.prompts == ("One moment.",)
    assert rest == []
    assert [r.method for r in simulator.requests] == ["POST", "POST"]
    assert simulator.requests[-1].body["message"] == {"type": "event", "val": "SESSION_CLOSURE"}


async def test_a_consumed_poll_id_after_messages_ends_the_turn_pending(start_simulator, make_client, fake_time,
                                                                     http):
    simulator, url = await start_simulator(slow_script({"say": "One moment."}, {"wait": 0.2}, {"say": "Done."}))
    client = make_client(url)
    stream = client.stream_text(CALL, "go")
    await anext(stream)
    # Someone else takes the poll's messages first: Kore delivers them once (specs §4.3).
    poll_id = simulator.requests[0].answer["pollId"]
    fake_time.advance(1)
    token = simulator.requests[0].headers["Authorization"]
    async with http.get(f"{url}/chatbot/v2/webhook/{BOT_ID}/poll/{poll_id}", headers={"Authorization": token}) as r:
        assert r.status == 200
    rest = [reply async for reply in stream]

    assert [(r.prompts, r.pending) for r in rest] == [((), True)]
    assert simulator.requests[-1].status == 400


async def test_poll_no_data_found_before_any_message_is_a_typed_error(stub_server, make_client):
    async def handler(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"data": [], "_v": "v2", "pollId": "p1"})
        return web.json_response({"errors": [{"msg": "No data found", "code": 400}]}, status=400)

    url = await stub_server(handler)
    with pytest.raises(KorePollExpired, match="No data found"):
        await make_client(url).send_text(CALL, "go")


async def test_duplicate_message_ids_across_polls_are_delivered_once(stub_server, make_client):
    item = {"type": "text", "val": "Once.", "messageId": "ms-1", "createdOn": "2026-01-01T00:00:00.000Z"}

    async def handler(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"data": [item], "_v": "v2", "pollId": "p1"})
        return web.json_response({"data": [item, {**item, "val": "Twice.", "messageId": "ms-2"}], "_v": "v2"})

    url = await stub_server(handler)
    reply = await make_client(url).send_text(CALL, "go")
    assert reply.prompts == ("Once.", "Twice.")


# -- errors and retries ---------------------------------------------------------------------------

async def test_429_is_retried_with_backoff_then_succeeds(start_simulator, make_client, fake_time):
    simulator, url = await start_simulator(slow_script({"fail": {"status": 429, "times": 1}}, {"say": "Ok."}))
    reply = await make_client(url).send_text(CALL, "go")

    assert reply.prompts == ("Ok.",)
    assert [r.status for r in simulator.requests] == [429, 200]
    assert fake_time.slept == [0.25]


async def test_rate_limit_that_outlasts_the_deadline_raises(start_simulator, make_client, fake_time):
    simulator, url = await start_simulator(rate_limit_per_minute=1)
    client = make_client(url)
    await client.start_call(CALL)
    with pytest.raises(KoreRateLimited, match="429 Too Many requests") as info:
        await client.send_text(CALL, "balance")

    assert info.value.retryable is True
    assert {r.status for r in list(simulator.requests)[1:]} == {429}
    assert len(simulator.requests) > 3
    assert sum(fake_time.slept) < 12


async def test_503_is_retried_but_500_and_504_are_not(start_simulator, make_client):
    simulator, url = await start_simulator(slow_script({"fail": {"status": 503, "times": 1}}, {"say": "Ok."}))
    assert (await make_client(url).send_text(CALL, "go")).prompts == ("Ok.",)
    assert [r.status for r in simulator.requests] == [503, 200]

    simulator, url = await start_simulator(slow_script({"fail": {"status": 500}}))
    with pytest.raises(KoreServerError, match="500 Internal Server Error"):
        await make_client(url).send_text(CALL, "go")
    assert len(simulator.requests) == 1

    simulator, url = await start_simulator(slow_script({"fail": {"status": 504}}))
    with pytest.raises(KoreBotTimeout, match="504 The request has been timed-out"):
        await make_client(url).send_text(CALL, "go")
    assert len(simulator.requests) == 1


async def test_slow_bot_without_polling_gets_kore_504(start_simulator, make_client):
    simulator, url = await start_simulator(slow_script({"wait": 20}, {"say": "Late."}), polling=False)
    with pytest.raises(KoreBotTimeout):
        await make_client(url).send_text(CALL, "go")
    assert [r.status for r in simulator.requests] == [504]


async def test_wrong_secret_is_a_401_without_retry_or_secret_in_the_message(start_simulator, make_client):
    simulator, url = await start_simulator()
    wrong = Secret("the-wrong-secret-0123456789abcdef0123456789abcdef0123456789abcd")
    with pytest.raises(KoreAuthError) as info:
        await make_client(url, secret=wrong).start_call(CALL)

    message = str(info.value)
    assert message.startswith("Kore.ai: 401 Invalid Access token (check KORE_CLIENT_ID")
    assert "[RTM-TRACE-" in message and "\n" not in message
    token = simulator.requests[0].headers["Authorization"].split(" ")[1]
    assert wrong.reveal() not in message and token not in message
    assert len(simulator.requests) == 1


async def test_enforced_jti_gives_a_fresh_token_per_request(start_simulator, make_client):
    simulator, url = await start_simulator(enforce_jti=True)
    client = make_client(url, enforce_jti=True)
    await client.start_call(CALL)
    await client.send_text(CALL, "balance")

    jtis = [r.claims["jti"] for r in simulator.requests]
    assert len(set(jtis)) == 2
    assert all(r.claims["exp"] - r.claims["iat"] <= 3600 for r in simulator.requests)


async def test_missing_jti_when_enforced_is_a_401(start_simulator, make_client):
    _, url = await start_simulator(enforce_jti=True)
    with pytest.raises(KoreAuthError, match='"jti" claim is required'):
        await make_client(url).start_call(CALL)


async def test_anonymous_users_not_allowed_is_a_412(start_simulator, make_client):
    _, url = await start_simulator(allow_anonymous=False)
    with pytest.raises(KoreAnonymousNotAllowed, match="412"):
        await make_client(url).start_call(CALL)


async def test_invalid_payload_is_a_400_without_retry(start_simulator, make_client):
    simulator, url = await start_simulator()
    with pytest.raises(KoreBadRequest, match="400 Invalid Request Payload"):
        await make_client(url).send_text(CALL, "")
    assert len(simulator.requests) == 1


async def test_connection_refused_is_retried_until_the_deadline(make_client, fake_time):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(KoreUnavailable, match=f"cannot reach http://127.0.0.1:{port}") as info:
        await make_client(f"http://127.0.0.1:{port}").send_text(CALL, "hello")
    assert info.value.retryable is True
    assert fake_time.slept[:4] == [0.25, 0.5, 1.0, 2.0]
    assert sum(fake_time.slept) < 12


async def test_no_answer_within_the_deadline_is_a_timeout(stub_server, make_client):
    async def never(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError

    url = await stub_server(never)
    with pytest.raises(KoreTimeout, match=r"no answer within the 0\.2 s turn deadline"):
        await make_client(url, real_time=True, turn_deadline_s=0.2).send_text(CALL, "hello")


async def test_a_body_that_is_not_json_is_a_bad_response(stub_server, make_client):
    async def html_page(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    url = await stub_server(html_page)
    with pytest.raises(KoreBadResponse, match=r"200 answer is not JSON \(text/html, 24 bytes\)") as info:
        await make_client(url).send_text(CALL, "hello")
    assert "maintenance" not in str(info.value)


# -- session lifetime -----------------------------------------------------------------------------

async def test_end_call_sends_session_closure_exactly_once(start_simulator, make_client):
    simulator, url = await start_simulator()
    client = make_client(url)
    await client.start_call(CALL)
    await client.end_call(CALL)
    await client.end_call(CALL)
    await client.end_call(CallInfo("call-never-started"))

    posts = webhook_posts(simulator)
    assert [p.body["message"]["val"] for p in posts] == ["ON_CONNECT", "SESSION_CLOSURE"]
    assert posts[1].body["from"] == {"id": "call-0001"}


async def test_async_mode_returns_at_once_with_a_pending_reply(start_simulator, make_client):
    simulator, url = await start_simulator(mode="async")
    reply = await make_client(url, mode="async").start_call(CALL)

    assert reply.pending is True and reply.prompts == ()
    await simulator.drain()
    assert len(simulator.callbacks) == 2  # one POST per message, no POST_URL configured here


async def test_logs_hold_no_secret_or_token(start_simulator, make_client, caplog):
    simulator, url = await start_simulator(rate_limit_per_minute=1)
    client = make_client(url)
    caplog.set_level(logging.DEBUG, logger="adapter.kore")
    await client.start_call(CALL)
    with pytest.raises(KoreRateLimited):
        await client.send_text(CALL, "balance")

    token = simulator.requests[0].headers["Authorization"].split(" ")[1]
    assert caplog.records
    assert SECRET.reveal() not in caplog.text and token not in caplog.text
    assert SECRET.reveal() not in repr(client.__dict__)


def test_a_client_needs_a_bot_url():
    from adapter.config import ConfigError
    from adapter.kore.settings import KoreSettings

    with pytest.raises(ConfigError, match="KORE_WEBHOOK_URL is not set"):
        KoreClient(KoreSettings(), session=None, clock=FakeTime())  # type: ignore[arg-type]


async def test_messages_sharing_an_id_in_one_body_are_all_spoken(stub_server, make_client):
    """Kore's language-change sample sends several messages of one answer under one messageId."""
    same = {"type": "text", "messageId": "ms-lang", "createdOn": "2026-01-01T00:00:00.000Z"}

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"data": [{**same, "val": "Language changed."},
                                           {**same, "val": "How can I help?"}], "_v": "v2"})

    url = await stub_server(handler)
    assert (await make_client(url).send_text(CALL, "español")).prompts == ("Language changed.", "How can I help?")


async def test_a_v2_answer_carrying_text_instead_of_data_is_spoken(stub_server, make_client):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"text": ["Your balance is $12."], "_v": "v2", "endOfTask": True})

    url = await stub_server(handler)
    assert (await make_client(url).send_text(CALL, "balance")).prompts == ("Your balance is $12.",)


async def test_a_rich_content_override_is_spoken_with_its_buttons_as_the_menu(stub_server, make_client):
    rich = {"type": "RichContentEvent", "content": {"type": "vertical", "elements": [
        {"type": "text", "text": "You have 8,117 points."},
        {"type": "button", "title": "Redeem points",
         "click": {"actions": [{"type": "publishText", "text": "Redeem points"}]}}]}}

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"type": "text", "val": json.dumps(rich), "messageId": "ms-1"}],
                                  "_v": "v2"})

    url = await stub_server(handler)
    reply = await make_client(url).send_text(CALL, "points")
    assert reply.prompts == ("You have 8,117 points. For Redeem points, press 1.",)
    assert reply.menu == Menu((MenuOption("1", "Redeem points", "Redeem points"),))
