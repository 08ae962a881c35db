"""Whole calls from baresip 1.0.0, a real SIP phone: it hears the welcome (its recording, run through
the recognizer, says the welcome's words), says an utterance and hears the reply, keys reach the bot
as digits, the bot's hang-up reaches it as BYE, and its own BYE closes the Kore session once."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from adapter.doors.sip.call import SipCall
from tests.doors.conftest import line_bot
from tests.doors.sip.baresip import baresip_call
from tests.doors.sip.conftest import SipService, sip_service

BOT = line_bot(intents={"balance": {"keywords": ["balance"], "steps": [
    {"say": "You have ten dollars."},
    {"ask": {"slot": "account", "say": "Enter your account number, then hash.", "speech": False,
             "digits": {"min": 1, "max": 8, "finishOnKey": "#"}, "pattern": r"\d+"}},
    {"voice": {"text": "Thank you. Goodbye.", "action": "hangup"}}]}})
pytestmark = pytest.mark.asyncio(loop_scope="module")  # the module's simulated bot serves on that loop
WELCOME_S = 8.0  # the caller speaks after the welcome ("Hello. For Check balance, press 1. ..." takes ~6 s)


async def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sip(bot) -> AsyncIterator[SipService]:
    async with sip_service(bot=bot) as service:
        yield service


async def the_call(sip: SipService) -> SipCall:
    await until(lambda: sip.agent.calls)
    [call] = sip.agent.calls.values()
    return call


def asks_for_keys(call: SipCall) -> bool:
    listening = call.conversation.listening
    return listening is not None and listening.expect is not None and listening.expect.digits is not None


async def transcript(wav: Path) -> str:
    """What the service's recognizer (Whisper when installed, as `auto` picks it) hears in `wav`, one
    stretch of sound at a time: the door's silence between prompts is on the recording too, and Whisper
    drops words from a long clip that is half silence."""
    parts = wav.parent / "heard"
    parts.mkdir()
    await run("sox", str(wav), str(parts / "part.wav"), "silence", "1", "0.05", "1%", "1", "0.5", "1%",
              ":", "newfile", ":", "restart")
    out = await run(str(Path(sys.executable).with_name("kore-voice")), "transcribe", "--json",
                    *map(str, sorted(parts.glob("part*.wav"))))
    return " ".join(json.loads(line)["text"] for line in out.splitlines()).lower()


async def run(*cmd: str) -> bytes:
    process = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    return out


async def test_a_baresip_call_hears_the_welcome_speaks_types_and_is_hung_up_by_the_bot(sip, bot, tmp_path):
    async with baresip_call(tmp_path, sip.port, "check balance", WELCOME_S) as phone:
        call = await the_call(sip)
        uid = call.conversation.call.user_id
        await phone.event("CALL_ESTABLISHED")
        await until(lambda: "balance" in bot.texts_from(uid), 40)  # said, recognised, the menu's payload
        await until(lambda: asks_for_keys(call) and not call.conversation.playout.speaking)  # and has played
        await phone.keys("123#")
        closed = await phone.event("CALL_CLOSED")  # the bot's goodbye: our BYE
    assert closed["param"] == "Connection reset by peer"  # baresip's words for a BYE it received
    await until(lambda: bot.closures(uid))
    assert bot.texts_from(uid) == ["balance", "123"]
    assert bot.closures(uid) == 1
    heard = await transcript(phone.heard())
    words = set(re.findall(r"\w+", heard))
    for said in ({"hello"}, {"ten", "10"}, {"account"}, {"goodbye"}):  # Whisper tiny.en mishears "balance",
        assert said & words, heard  # and writes "ten dollars" as "$10" at times


async def test_the_callers_bye_closes_the_kore_session_once(sip, bot, tmp_path):
    async with baresip_call(tmp_path, sip.port, "check balance", 60) as phone:
        call = await the_call(sip)
        uid = call.conversation.call.user_id
        await phone.event("CALL_ESTABLISHED")
        await phone.hang_up()
        await phone.event("CALL_CLOSED")
        await until(lambda: bot.closures(uid))
    await until(lambda: not sip.agent.calls)
    assert bot.closures(uid) == 1 and bot.texts_from(uid) == []
