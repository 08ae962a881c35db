"""The simulator enforces Kore's contract over HTTP: tokens, payloads, limits, polling, recording."""

from __future__ import annotations

import html
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from adapter.kore.simulator.jwt_check import JTI_EXP_TOO_LONG, JTI_REPLAY

from .fakes import BOT_ID, CLIENT_ID, SECRET, FakeTime

V2 = f"/chatbot/v2/webhook/{BOT_ID}"
V1 = f"/chatbot/hooks/{BOT_ID}"


def token(fake_time: FakeTime, sub: str = "call-1", key: str = SECRET.reveal(), algorithm: str = "HS256",
          **claims: Any) -> str:
    payload = {"appId": CLIENT_ID, "sub": sub, "iat": int(fake_time.time()), "exp": int(fake_time.time()) + 600}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


def text(val: str, user: str = "call-1", new: bool = False) -> dict[str, Any]:
    return {"session": {"new": new}, "message": {"type": "text", "val": val}, "from": {"id": user}}


async def call(http, url: str, body: Any, auth: str | None, method: str = "POST") -> tuple[int, Any]:
    headers = {"Authorization": auth} if auth else {}
    async with http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None) if await resp.read() else None


@pytest.fixture
async def sim(start_simulator):
    return await start_simulator()


async def test_a_good_request_and_the_record_of_it(sim, http, fake_time):
    simulator, url = sim
    status, body = await call(http, url + V2, text("balance"), f"Bearer {token(fake_time)}")

    assert status == 200
    assert [d["val"] for d in body["data"]] == ["Your checking account balance is *$2,450.18*.",
                                                "Is there anything else? You can say transfer, agent, or goodbye."]
    assert body["data"][0]["messageId"].startswith("ms-")
    assert body["data"][0]["createdOn"] < body["data"][1]["createdOn"]
    assert (body["to"], body["from"], body["_v"], body["endOfTask"], body["completedTaskName"]) == (
        "call-1", BOT_ID, "v2", True, "balance")
    [record] = simulator.requests
    assert (record.method, record.path, record.status, record.body) == ("POST", V2, 200, text("balance"))
    assert record.claims["sub"] == "call-1"


@pytest.mark.parametrize("auth_factory", [
    lambda t: None,
    lambda t: "Basic abc",
    lambda t: f"bearer {token(t, key='a-different-secret-of-enough-length-0123456789abcdef')}",
    lambda t: f"bearer {token(t, appId=None, appid=CLIENT_ID)}",  # the key must be exactly appId
    lambda t: f"bearer {token(t, appId='cs-other')}",
    lambda t: f"bearer {token(t, exp=int(t.time()) - 1)}",
    lambda t: f"bearer {token(t, userIdentity='someone-else')}",
])
async def test_bad_tokens_get_kores_401(sim, http, fake_time, auth_factory):
    _, url = sim
    status, body = await call(http, url + V2, text("hi"), auth_factory(fake_time))
    assert status == 401
    assert body["errors"] == [{"msg": "Invalid Access token", "code": 401}]
    assert body["_v"] == "v2" and body["_t"].startswith("RTM-TRACE-")


async def test_user_identity_equal_to_from_id_is_fine(sim, http, fake_time):
    _, url = sim
    status, _ = await call(http, url + V2, text("hi"), f"bearer {token(fake_time, userIdentity='call-1')}")
    assert status == 200


async def test_jti_rules(sim, http, fake_time):
    _, url = sim
    long_lived = token(fake_time, jti="j-1", exp=int(fake_time.time()) + 7200)
    status, body = await call(http, url + V2, text("hi"), f"bearer {long_lived}")
    assert (status, body["errors"]) == (401, [{"msg": JTI_EXP_TOO_LONG, "code": 401}])


async def test_jti_replay_is_refused(sim, http, fake_time):
    _, url = sim
    once = f"bearer {token(fake_time, jti='j-2')}"
    assert (await call(http, url + V2, text("hi"), once))[0] == 200
    status, body = await call(http, url + V2, text("hi"), once)
    assert (status, body["errors"][0]["msg"]) == (401, JTI_REPLAY)


async def test_rs256_apps_are_checked_with_the_public_key(start_simulator, http, fake_time, rsa_key):
    key = rsa_key
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    _, url = await start_simulator(algorithm="RS256", public_key_pem=public)
    assert (await call(http, url + V2, text("hi"), f"bearer {token(fake_time, key=key, algorithm='RS256')}"))[0] == 200
    assert (await call(http, url + V2, text("hi"), f"bearer {token(fake_time)}"))[0] == 401


@pytest.mark.parametrize("body", [
    None,
    "just text",
    {"message": {"type": "text", "val": "hi"}},
    {"message": {"type": "text", "val": "hi"}, "from": {"id": ""}},
    {"message": {"type": "audio", "val": "hi"}, "from": {"id": "call-1"}},
    {"message": {"type": "event", "val": "HANGUP"}, "from": {"id": "call-1"}},
    {"message": {"type": "text", "val": ""}, "from": {"id": "call-1"}},
    {"message": {"type": "template", "val": "x"}, "from": {"id": "call-1"}},
    {"session": {"new": "yes"}, "message": {"type": "text", "val": "hi"}, "from": {"id": "call-1"}},
])
async def test_malformed_payloads_get_400(sim, http, fake_time, body):
    _, url = sim
    status, answer = await call(http, url + V2, body, f"bearer {token(fake_time)}")
    assert (status, answer["errors"]) == (400, [{"msg": "Invalid Request Payload", "code": 400}])


async def test_v1_payload_rules(sim, http, fake_time):
    _, url = sim
    bad = {"message": {"type": "text", "val": "hi"}, "from": {"id": "call-1"}}
    assert (await call(http, url + V1, bad, f"bearer {token(fake_time)}"))[0] == 400


async def test_unknown_bot_is_not_available(sim, http, fake_time):
    _, url = sim
    status, body = await call(http, url + "/chatbot/v2/webhook/st-nope", text("hi"), f"bearer {token(fake_time)}")
    assert (status, body["errors"][0]["msg"]) == (401, "webhook is not available")


async def test_hook_instance_urls_are_served(sim, http, fake_time):
    _, url = sim
    for path in (V1 + "/hookInstance/ivrInst-1", V2 + "/hookInstance/ivrInst-1"):
        body = text("hi") if path.startswith(V2) else {"message": {"text": "hi"}, "from": {"id": "call-1"}}
        assert (await call(http, url + path, body, f"bearer {token(fake_time)}"))[0] == 200


async def test_over_60_requests_a_minute_per_user_is_429(sim, http, fake_time):
    _, url = sim
    auth = f"bearer {token(fake_time)}"
    statuses = [(await call(http, url + V2, text("hi"), auth))[0] for _ in range(61)]
    assert statuses == [200] * 60 + [429]
    other = f"bearer {token(fake_time, sub='call-2')}"
    assert (await call(http, url + V2, text("hi", user="call-2"), other))[0] == 200
    fake_time.advance(60)
    assert (await call(http, url + V2, text("hi"), auth))[0] == 200


async def test_polling_in_progress_then_done_then_no_data(start_simulator, http, fake_time):
    script = {"welcome": [{"say": "Hi"}], "fallback": [{"say": "?"}],
              "intents": {"slow": {"keywords": ["slow"], "steps": [{"say": "Wait."}, {"wait": 2}, {"say": "Done."}]}}}
    _, url = await start_simulator(script)
    auth = f"bearer {token(fake_time)}"
    _, first = await call(http, url + V2, text("slow"), auth)
    poll_url = f"{url}{V2}/poll/{first['pollId']}"

    assert [d["val"] for d in first["data"]] == ["Wait."] and "endOfTask" not in first
    assert await call(http, poll_url, None, auth, "GET") == (200, {"status": "Inprogress", "pollId": first["pollId"],
                                                                    "_v": "v2"})
    fake_time.advance(2)
    _, done = await call(http, poll_url, None, auth, "GET")
    assert [d["val"] for d in done["data"]] == ["Done."] and done["endOfTask"] is True and "pollId" not in done
    assert await call(http, poll_url, None, auth, "GET") == (400, {"errors": [{"msg": "No data found", "code": 400}]})


async def test_v1_sends_templates_as_html_escaped_json(sim, http, fake_time):
    _, url = sim
    status, body = await call(http, url + V1, {"session": {"new": True}, "message": {"text": "Hi"},
                                               "from": {"id": "call-1"}}, f"bearer {token(fake_time)}")
    assert status == 200
    welcome, menu = body["text"]
    assert welcome == "Welcome to **Demo Bank**."
    assert "&quot;template_type&quot;: &quot;button&quot;" in menu
    assert json.loads(html.unescape(menu))["payload"]["buttons"][0] == {"type": "postback", "title": "Check balance",
                                                                        "payload": "balance"}


async def test_session_closure_answers(sim, http, fake_time):
    _, url = sim
    auth = f"bearer {token(fake_time)}"
    closure = {"message": {"type": "event", "val": "SESSION_CLOSURE"}, "from": {"id": "call-1"}}
    connect = {"session": {"new": True}, "message": {"type": "event", "val": "ON_CONNECT"}, "from": {"id": "call-1"}}
    await call(http, url + V2, connect, auth)
    _, closed = await call(http, url + V2, closure, auth)
    _, ignored = await call(http, url + V2, closure, auth)
    assert closed == {"data": [{"type": "event", "val": "SESSION_CLOSURE", "eventType": "SESSION_CLOSURE_SUCCESS",
                                "description": "session closed successfully"}], "_v": "v2"}
    assert ignored["data"][0]["eventType"] == "SESSION_CLOSURE_IGNORED"


async def test_anonymous_users_can_be_refused_and_registered_users_allowed(start_simulator, http, fake_time):
    _, url = await start_simulator(allow_anonymous=False, registered_users=frozenset({"call-vip"}))
    assert (await call(http, url + V2, text("hi"), f"bearer {token(fake_time)}"))[0] == 412
    vip = f"bearer {token(fake_time, sub='call-vip')}"
    assert (await call(http, url + V2, text("hi", user="call-vip"), vip))[0] == 200

