"""The async POST_URL receiver: token, routing, duplicates, ordering; and Kore's async flow end to end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from conversation.manual_clock import ManualClock, ManualTimer

from adapter.calls.info import CallInfo
from adapter.calls.replies import CallAction
from adapter.config import Secret
from adapter.kore.callbacks import MemoryInbox, ReplyRouter, add_callback_routes

from .fakes import BOT_ID

TOKEN = Secret("callback-token-0123456789abcdef")
USER = "call-0001"


WINDOW_S = 0.15  # ReplyRouter's default reorder window


class NoWindow(ManualClock):
    """Closes the reorder window at once, so each callback reaches the inbox as a reply of its own."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> ManualTimer:
        callback()
        return ManualTimer()


def item(val: str, created: str, message_id: str | None = None) -> dict[str, Any]:
    return {"type": "text", "val": val, "createdOn": created, "messageId": message_id or f"ms-{val}"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def inbox() -> MemoryInbox:
    inbox = MemoryInbox()
    inbox.open(USER)
    return inbox


@pytest.fixture
async def receiver(aiohttp_client: Any, inbox: MemoryInbox, clock: ManualClock) -> Any:
    app = web.Application()
    add_callback_routes(app, ReplyRouter(inbox, clock), TOKEN)
    return await aiohttp_client(app)


async def post(receiver: Any, body: Any, token: str = TOKEN.reveal()) -> tuple[int, Any]:
    resp = await receiver.post(f"/kore/callback/{token}", json=body)
    return resp.status, await resp.json()


async def test_a_callback_is_acknowledged_and_delivered_to_its_call(receiver, inbox, clock):
    status, body = await post(receiver, {"to": USER, "from": BOT_ID, "data": [item("Hello.", "2026-01-01T00:00:01Z")],
                                         "_v": "v2"})
    assert (status, body) == (200, {"status": "ok", "to": USER})
    clock.advance(WINDOW_S)
    reply = await inbox.get(USER)
    assert reply.prompts == ("Hello.",)
    assert reply.pending is False


async def test_the_token_may_come_as_a_bearer_header(receiver, inbox, clock):
    resp = await receiver.post("/kore/callback", json={"to": USER, "data": [item("Hi.", "2026-01-01T00:00:01Z")]},
                               headers={"Authorization": f"Bearer {TOKEN.reveal()}"})
    assert resp.status == 200
    clock.advance(WINDOW_S)
    assert (await inbox.get(USER)).prompts == ("Hi.",)


@pytest.mark.parametrize("path,headers", [
    ("/kore/callback/not-the-token", {}),
    ("/kore/callback", {}),
    ("/kore/callback", {"Authorization": "Bearer not-the-token"}),
])
async def test_a_bad_or_missing_token_is_401(receiver, clock, path, headers):
    resp = await receiver.post(path, json={"to": USER, "data": []}, headers=headers)
    assert resp.status == 401
    assert await resp.json() == {"error": {"code": "bad_token", "message": "the callback token is missing or wrong"}}
    assert clock.pending == 0


async def test_a_callback_for_a_call_that_is_gone_is_accepted_and_dropped(receiver, inbox, clock, caplog):
    """Kore documents no retry policy: an error status could only make it resend what nobody can hear."""
    status, body = await post(receiver, {"to": "call-gone", "data": [item("Hi.", "2026-01-01T00:00:01Z")]})
    assert (status, body) == (202, {"status": "ignored", "reason": "no live call has the user id call-gone"})
    assert clock.pending == 0 and inbox.waiting(USER) == 0
    assert "dropped a bot callback: no live call has the user id call-gone" in caplog.text


async def test_a_documented_v2_callback_without_to_goes_to_the_one_call_waiting(receiver, inbox, clock):
    inbox.awaiting.add(USER)
    status, body = await post(receiver, {"data": [{"type": "text", "val": "Please provide your account number",
                                                   "createdOn": "2021-10-11T13:44:34.675Z"}], "_v": "v2"})
    assert (status, body) == (200, {"status": "ok", "to": USER})
    clock.advance(WINDOW_S)
    assert (await inbox.get(USER)).prompts == ("Please provide your account number.",)
    assert inbox.awaiting_reply() == []


async def test_a_callback_without_to_is_routed_by_from_when_it_names_a_call(receiver, inbox, clock):
    status, _ = await post(receiver, {"from": USER, "data": [item("Hi.", "2026-01-01T00:00:01Z")]})
    assert status == 200
    clock.advance(WINDOW_S)
    assert (await inbox.get(USER)).prompts == ("Hi.",)


@pytest.mark.parametrize("waiting", [0, 2])
async def test_a_callback_without_to_and_no_single_call_waiting_is_dropped_with_a_warning(
        receiver, inbox, clock, caplog, waiting):
    for user in ("call-0001", "call-0002")[:waiting]:
        inbox.open(user)
        inbox.awaiting.add(user)
    status, body = await post(receiver, {"data": [item("Hi.", "2026-01-01T00:00:01Z")], "_v": "v2"})
    assert status == 202 and body["status"] == "ignored"
    assert f'the callback has no "to" and {waiting} calls are waiting for the bot: use KORE_MODE=sync' in caplog.text
    assert clock.pending == 0


def test_async_v2_start_up_warns_that_concurrent_calls_need_sync_mode(caplog):
    add_callback_routes(web.Application(), ReplyRouter(MemoryInbox(), ManualClock()), TOKEN)
    assert "For concurrent calls use KORE_MODE=sync (polling)" in caplog.text


async def test_messages_sharing_an_id_in_one_callback_are_all_delivered(receiver, inbox, clock):
    await post(receiver, {"to": USER, "data": [item("Idioma cambiado.", "2026-01-01T00:00:01Z", "ms-lang"),
                                               item("¿En qué puedo ayudarle?", "2026-01-01T00:00:02Z", "ms-lang")]})
    clock.advance(WINDOW_S)
    assert (await inbox.get(USER)).prompts == ("Idioma cambiado.", "¿En qué puedo ayudarle?")


@pytest.mark.parametrize("raw,message", [
    (b"{not json", "the body is not JSON"),
    (b'["a list"]', "the JSON body is not an object"),
    (b'{"to": "call-0001", "data": "nope"}', "the body's data is not a list of messages"),
])
async def test_a_malformed_callback_is_400(receiver, raw, message):
    resp = await receiver.post(f"/kore/callback/{TOKEN.reveal()}", data=raw,
                               headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert await resp.json() == {"error": {"code": "malformed", "message": message}}


async def test_duplicates_are_dropped_by_message_id(receiver, inbox, clock):
    first = {"to": USER, "data": [item("Once.", "2026-01-01T00:00:01Z", "ms-1")]}
    await post(receiver, first)
    await post(receiver, first)
    clock.advance(WINDOW_S)
    await post(receiver, first)  # also after delivery
    clock.advance(WINDOW_S)

    assert (await inbox.get(USER)).prompts == ("Once.",)
    assert inbox.waiting(USER) == 0


async def test_callbacks_that_overtook_each_other_are_put_back_in_order(receiver, inbox, clock):
    await post(receiver, {"to": USER, "data": [item("Third.", "2026-01-01T00:00:03.000Z")]})
    await post(receiver, {"to": USER, "data": [item("First.", "2026-01-01T00:00:01.000Z")]})
    await post(receiver, {"to": USER, "data": [item("Second.", "2026-01-01T00:00:02.000Z")]})
    clock.advance(WINDOW_S)

    reply = await inbox.get(USER)
    assert reply.prompts == ("First.", "Second.", "Third.")
    assert inbox.waiting(USER) == 0


async def test_v2_end_of_task_message_alone_is_delivered(receiver, inbox, clock):
    await post(receiver, {"to": USER, "from": BOT_ID, "endOfTask": True, "endReason": "Fulfilled"})
    clock.advance(WINDOW_S)
    reply = await inbox.get(USER)
    assert (reply.prompts, reply.end_of_task) == ((), True)


async def test_v1_callbacks_are_read_too(aiohttp_client, inbox, clock):
    app = web.Application()
    add_callback_routes(app, ReplyRouter(inbox, clock, version="v1"), TOKEN)
    client = await aiohttp_client(app)
    await post(client, {"to": USER, "from": BOT_ID, "text": "Your available account balance is $31,439."})
    clock.advance(WINDOW_S)
    assert (await inbox.get(USER)).prompts == ("Your available account balance is $31,439.",)


async def test_a_call_that_ended_before_the_window_closed_gets_nothing(receiver, inbox, clock):
    await post(receiver, {"to": USER, "data": [item("Late.", "2026-01-01T00:00:01Z")]})
    inbox.close(USER)
    clock.advance(WINDOW_S)
    assert not inbox.accepts(USER)


async def test_async_mode_end_to_end(aiohttp_server, start_simulator, make_client):
    """The simulator in async mode POSTs each message to our receiver; they reach the call's inbox."""
    inbox = MemoryInbox()
    app = web.Application()
    add_callback_routes(app, ReplyRouter(inbox, NoWindow()), TOKEN)
    receiver = await aiohttp_server(app)
    post_url = str(receiver.make_url(f"/kore/callback/{TOKEN.reveal()}"))
    simulator, url = await start_simulator(mode="async", post_url=post_url, access_token=TOKEN)
    client = make_client(url, mode="async")
    call = CallInfo("call-async-1")
    inbox.open(call.user_id)

    ack = await client.start_call(call)
    await simulator.drain()
    welcome = [await inbox.get(call.user_id) for _ in range(2)]
    await client.send_text(call, "goodbye")
    await simulator.drain()
    bye = [await inbox.get(call.user_id) for _ in range(2)]

    assert ack.pending is True and ack.prompts == ()
    assert welcome[0].prompts == ("Welcome to Demo Bank.",)
    assert welcome[1].menu is not None and len(welcome[1].menu.options) == 3
    assert bye[0].action == CallAction("hangup")
    assert (bye[1].prompts, bye[1].end_of_task) == ((), True)
    assert {c.status for c in simulator.callbacks} == {200}
    assert all(c.body["to"] == call.user_id for c in simulator.callbacks)


async def test_async_slow_steps_arrive_later_in_order(aiohttp_server, start_simulator, make_client, fake_time):
    inbox = MemoryInbox()
    app = web.Application()
    add_callback_routes(app, ReplyRouter(inbox, NoWindow()), TOKEN)
    receiver = await aiohttp_server(app)
    script = {"welcome": [{"say": "Hi"}], "fallback": [{"say": "?"}],
              "intents": {"slow": {"keywords": ["slow"], "steps": [{"say": "Wait."}, {"wait": 30}, {"say": "Done."}]}}}
    simulator, url = await start_simulator(script, mode="async",
                                           post_url=str(receiver.make_url(f"/kore/callback/{TOKEN.reveal()}")))
    call = CallInfo("call-async-2")
    inbox.open(call.user_id)

    ack = await make_client(url, mode="async").send_text(call, "slow")
    await simulator.drain()

    assert ack.pending is True
    assert [(await inbox.get(call.user_id)).prompts for _ in range(2)] == [("Wait.",), ("Done.",)]
    assert (await inbox.get(call.user_id)).end_of_task is True
    assert 30 in fake_time.slept
