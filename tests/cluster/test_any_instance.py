"""Request/response calls on any instance: two services on one real redis-server, each REST request of a
call landing on the instance the test picks (as a round-robin balancer would), the real Kore.ai client
and simulator, espeak-ng and PocketSphinx."""

from __future__ import annotations

from pathlib import Path

from doors.conftest import keys, running, start_call

from adapter.calls.info import CallInfo
from adapter.calls.phase import Phase
from adapter.conversation.store import CallState, RedisStore
from cluster.conftest import cluster_settings

SAMPLES = Path(__file__).parents[2] / "samples"


def on_connects(bot, call_id: str) -> int:
    return sum(1 for b in bot.bodies(call_id) if b.get("message", {}).get("val") == "ON_CONNECT")


async def test_a_rest_calls_turns_alternate_between_instances(redis_db, peek, bot):
    async with running(cluster_settings(redis_db, bot)) as one, running(cluster_settings(redis_db, bot)) as two:
        call = (await start_call(one))["id"]
        welcome = await (await one.get(f"/v1/calls/{call}/audio/0")).read()
        elsewhere = await two.get(f"/v1/calls/{call}/audio/0")  # re-rendered there from its stored texts
        assert elsewhere.status == 200
        again = await elsewhere.read()  # the same words, the same voice (espeak-ng's length varies by a few ms)
        assert again[:4] == b"RIFF" and abs(len(again) - len(welcome)) < len(welcome) / 100

        menu = await keys(two, call, "2")  # the welcome's menu, as the first instance stored it
        assert menu.status == 200, await menu.text()
        assert "8 digit account number" in " ".join((await menu.json())["bot"]["texts"])
        assert (await menu.json())["audio_url"].endswith(f"/v1/calls/{call}/audio/1")
        account = await keys(one, call, "12345678#")  # back on the first: its copy is stale, rebuilt
        assert account.status == 200, await account.text()
        assert "dollars" in " ".join((await account.json())["bot"]["texts"])
        done = await keys(two, call, "50#")
        assert "I sent 50 dollars" in " ".join((await done.json())["bot"]["texts"])
        spoken = await one.post(f"/v1/calls/{call}/turns", data=(SAMPLES / "check_my_balance_16k.wav").read_bytes(),
                                headers={"Content-Type": "audio/wav"})
        assert spoken.status == 200, await spoken.text()
        body = await spoken.json()
        assert "balance" in body["transcript"].lower() and "2,450.18" in " ".join(body["bot"]["texts"])
        assert body["audio_url"].endswith(f"/v1/calls/{call}/audio/4")
        assert bot.texts_from(call) == ["transfer", "12345678", "50", "check my balance"]
        assert on_connects(bot, call) == 1  # one bot session all along

        last = await two.get(f"/v1/calls/{call}/audio/4?format=ulaw8k")
        assert last.status == 200 and len(await last.read()) > 8000

        assert (await two.delete(f"/v1/calls/{call}")).status == 204
        assert bot.closures(call) == 1
        assert await peek.exists(f"kv:call:{call}") == 0
        assert (await keys(one, call, "1")).status == 409  # ended on the other instance
        assert (await one.delete(f"/v1/calls/{call}")).status == 204
        assert bot.closures(call) == 1


async def test_a_turn_while_another_instance_holds_the_call_is_refused(redis_db, peek, bot):
    async with running(cluster_settings(redis_db, bot)) as one, running(cluster_settings(redis_db, bot)) as two:
        call = (await start_call(one))["id"]
        await peek.set(f"kv:turn:{call}", "held elsewhere", px=60_000)  # a turn under way on some instance
        refused = await keys(two, call, "1")
        assert refused.status == 429 and (await refused.json())["error"]["code"] == "turn_in_progress"
        assert bot.texts_from(call) == []
        await peek.delete(f"kv:turn:{call}")
        assert (await keys(two, call, "1")).status == 200
        assert bot.texts_from(call) == ["balance"]


async def test_a_takeover_racing_the_owners_hang_up_cannot_bring_the_ended_calls_state_back(peek):
    """The owner hangs up (idle) while another instance, under the call's lock, has read the state and
    rebuilds the call: the rebuilt copy's first write comes after the end and is refused."""
    owner, taker = RedisStore(peek, "instance-a", 600), RedisStore(peek, "instance-b", 600)
    state = CallState(CallInfo.new("rest", "+15551230000", "+15559870000"), Phase.LISTENING)
    call_id = state.call.user_id
    await owner.put(call_id, state)
    assert (await taker.stored(call_id)).owner == "instance-a"  # the takeover's read: rebuild it
    assert await owner.release(call_id)  # the idle hang-up: its SESSION_CLOSURE goes out
    await taker.put(call_id, state)  # the rebuilt copy's hand-over write
    assert await peek.exists(f"kv:call:{call_id}") == 0
    assert await peek.smembers("kv:owned:instance-b") == set()
    assert not await taker.release(call_id)  # so the copy closes no session a second time


async def test_a_copy_rebuilt_as_the_call_ends_elsewhere_ends_too_without_reaching_the_bot(redis_db, peek, bot):
    async with running(cluster_settings(redis_db, bot)) as one, running(cluster_settings(redis_db, bot)) as two:
        call = (await start_call(one))["id"]
        # the owner's idle hang-up lands right after the other instance read the state to take the call over
        await peek.set(f"kv:ended:{call}", "1", px=60_000)
        late = await keys(two, call, "1")
        assert late.status == 200 and (await late.json())["end_of_call"] is True
        assert bot.texts_from(call) == [] and bot.closures(call) == 0  # the owner's end closes the session
        await peek.delete(f"kv:call:{call}")  # as the owner's release did, atomically with the mark
        assert (await keys(two, call, "1")).status == 409
