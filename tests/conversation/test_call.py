"""Whole calls through the conversation engine: the real simulator, client, recognizer and espeak-ng.

The test plays the door (live 8 kHz audio in, μ-law prompts out, playback reported like Twilio's marks)
and moves a manual clock for every timeout.
"""

from __future__ import annotations

import asyncio

import numpy as np

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.calls.events import (
    BotFailed,
    BotSaid,
    Clear,
    HangUp,
    Heard,
    KeyIn,
    Listening,
    Play,
    PlaybackDone,
    TextIn,
    Transfer,
    UtteranceIn,
)
from adapter.calls.phase import Phase
from adapter.conversation.services import AudioSpec

from .conftest import CallDriver

SLOW_BOT = {
    "name": "Slow",
    "welcome": [{"say": "Hello."}],
    "fallback": [{"say": "Pardon?"}],
    "intents": {
        "slow": {"keywords": ["slow"], "steps": [{"wait": 3}, {"say": "Here is your slow answer."}]},
        "stuck": {"keywords": ["stuck"], "steps": [{"wait": 60}, {"say": "Too late."}]},
    },
}
LONG_WELCOME = {
    "name": "Long",
    "welcome": [{"say": "Welcome to the bank of very long prompts. " * 6}],
    "fallback": [{"say": "You said something."}],
    "intents": {},
}


def tones(keys: str, rate: int = 8000, on_ms: int = 80, off_ms: int = 80) -> Pcm:
    """Real in-band DTMF tones, -10 dBFS per frequency."""
    low = {"1": 697, "2": 697, "3": 697, "4": 770, "5": 770, "6": 770, "7": 852, "8": 852, "9": 852,
           "*": 941, "0": 941, "#": 941}
    high = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336,
            "3": 1477, "6": 1477, "9": 1477, "#": 1477}
    t = np.arange(rate * on_ms // 1000) / rate
    parts = [np.zeros(rate * off_ms // 1000)]
    for key in keys:
        parts.append(0.316 * (np.sin(2 * np.pi * low[key] * t) + np.sin(2 * np.pi * high[key] * t)))
        parts.append(np.zeros(rate * off_ms // 1000))
    return Pcm.from_array(np.concatenate(parts), rate)


async def played(call: CallDriver) -> Play:
    """The next prompt, reported as played to the end (and that report handled)."""
    play = await call.next(Play)
    call.send(PlaybackDone(play.prompt_id))
    await asyncio.sleep(0.05)
    return play


async def welcome(call: CallDriver) -> Listening:
    listening = await call.next(Listening)
    for play in call.since(0, Play):
        call.send(PlaybackDone(play.prompt_id))
    await asyncio.sleep(0.05)
    return listening


async def asked(call: CallDriver, text: str) -> None:
    """Until the bot has the caller's `text` (not a guess at how long that takes)."""
    for _ in range(1000):
        if any(b["message"].get("val") == text for b in call.bodies()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the bot never got {text!r}")


def duration(play: Play) -> float:
    return decode_audio(play.audio, "audio/basic").duration_s


async def test_a_whole_banking_call(start_call, say):
    call = await start_call()
    listening = await welcome(call)
    first = call.bodies()[0]
    assert first["message"] == {"type": "event", "val": "ON_CONNECT"} and first["session"]["new"] is True
    assert first["from"]["id"] == call.conversation.call.user_id != "+15551230000"
    [shown] = call.since(0, BotSaid)
    assert [o.label for o in shown.menu.options] == ["Check balance", "Transfer money", "Talk to an agent"]
    [hello] = call.since(0, Play)
    assert hello.text.startswith("Welcome to Demo Bank.") and "For Transfer money, press 2." in hello.text
    assert hello.format == "ulaw8k" and abs(duration(hello) - hello.duration_s) < 0.01 and hello.duration_s > 5
    assert listening.menu is not None

    # a spoken request: the menu's labels are the recognizer's hints, the option's payload goes to the bot
    await call.speak(say("check balance") + Pcm.silence(1.0, 8000))
    heard = await call.next(Heard)
    assert heard.final and heard.input == "speech" and heard.text.lower() == "check balance"
    balance = await played(call)                        # the bot's answer: its request is recorded
    assert "two thousand" not in balance.text and "$2,450.18" in balance.text
    assert call.bodies()[-1]["message"] == {"type": "text", "val": "balance"}
    assert call.bodies()[-1]["customData"]["inputMode"] == "speech"
    await call.next(Listening)

    # keypad: an 8-digit account number as real tones in the audio, then an amount as phone-system keys
    call.send(TextIn("transfer money"))
    assert (await call.next(Heard)).text == "transfer money"
    ask = await played(call)
    assert "8 digit account number" in ask.text
    expect = (await call.next(Listening)).expect
    assert expect.speech is False and (expect.digits.min, expect.digits.max) == (8, 8)
    await call.speak(say("transfer money") + Pcm.silence(1.0, 8000))   # keys only: speech is not heard
    await call.speak(tones("12345678#"))
    heard = await call.next(Heard)
    assert (heard.input, heard.digits, heard.text) == ("dtmf", "12345678", "12345678")
    await played(call)
    dtmf_body = call.bodies()[-1]
    assert dtmf_body["message"]["val"] == "12345678"
    # 8 of at most 8 digits end the entry: the "#" after them is not needed (and not sent)
    assert dtmf_body["customData"]["inputMode"] == "dtmf" and dtmf_body["customData"]["dtmf"] == "12345678"
    await call.next(Listening)
    for key in "250#":
        call.send(KeyIn(key))
    assert (await call.next(Heard)).digits == "250"
    assert "One moment" in (await played(call)).text
    await call.advance(3)                               # the bot's slow transfer step; polls follow
    done = await played(call)
    assert "sent 250 dollars" in done.text
    await call.next(Listening)

    # the bot hangs up; SESSION_CLOSURE goes exactly once
    call.send(TextIn("goodbye"))
    bye = await call.next(Play)
    assert "Goodbye" in bye.text
    assert (await call.next(HangUp)).reason == "the bot ended the call"
    await call.conversation.hang_up()
    await call.conversation.hang_up()
    closures = [b for b in call.bodies() if b["message"].get("val") == "SESSION_CLOSURE"]
    assert len(closures) == 1 and call.conversation.phase == Phase.CLOSED


async def test_menu_choice_by_key_sends_the_payload_and_transfers(start_call):
    call = await start_call()
    await welcome(call)
    call.send(KeyIn("3"))
    heard = await call.next(Heard)
    assert (heard.input, heard.digits, heard.text) == ("dtmf", "3", "agent")
    transfer = await call.next(Transfer)
    assert transfer.to == "sip:agent@demo-bank.example"
    assert call.bodies()[-1]["message"]["val"] == "SESSION_CLOSURE"


async def test_barge_in_cuts_a_long_prompt_but_a_click_does_not(start_call, say):
    call = await start_call(LONG_WELCOME)
    play = await call.next(Play)
    await call.next(Listening)
    assert play.duration_s > 10 and play.barge_in
    click = Pcm.from_array(np.random.default_rng(3).normal(0, 0.3, 400), 8000)
    await call.speak(Pcm.silence(0.5, 8000) + click + Pcm.silence(1.0, 8000))
    mark = len(call.seen)
    await call.speak(say("hello there") + Pcm.silence(1.0, 8000))
    await call.next(Clear)
    assert not call.since(0, Clear)[:-1]                # only the real speech cut the prompt
    heard = await call.next(Heard)
    assert heard.final and heard.text
    assert call.seen.index(call.since(mark, Clear)[0]) < call.seen.index(heard)


async def test_no_barge_in_when_switched_off(start_call, say):
    call = await start_call(LONG_WELCOME, barge_in=False)
    await call.next(Listening)
    await call.speak(say("hello there") + Pcm.silence(1.0, 8000))
    call.send(KeyIn("5"))
    later = await call.drain()
    assert not [e for e in later if isinstance(e, (Clear, Heard))]


async def test_no_input_reprompts_three_times_then_says_goodbye(start_call):
    call = await start_call()
    listening_prompt = (await call.next(Play)).text
    await welcome(call)
    for _ in range(3):
        await call.advance(5)
        assert (await played(call)).text == listening_prompt
    await call.advance(5)
    goodbye = await call.next(Play)
    assert "can't hear you" in goodbye.text and not goodbye.barge_in
    assert (await call.next(HangUp)).reason == "no input"
    await call.conversation.hang_up()
    assert call.bodies()[-1]["message"]["val"] == "SESSION_CLOSURE"


async def test_no_match_apologises_then_gives_up(start_call):
    call = await start_call(audio=AudioSpec(in_rate=16000, out_format="wav16k"))
    await call.next(Listening)
    for _ in range(3):
        call.send(UtteranceIn(Pcm.silence(1.0, 16000)))
        assert (await call.next(Play)).text == "Sorry, I didn't catch that."
        await call.next(Listening)
    call.send(UtteranceIn(Pcm.silence(1.0, 16000)))
    assert "can't understand you" in (await call.next(Play)).text
    assert (await call.next(HangUp)).reason == "no match"
    assert len(call.bodies()) == 1 + 1                  # ON_CONNECT, SESSION_CLOSURE: nothing heard


async def test_a_slow_bot_gets_a_filler_then_its_answer(start_call):
    call = await start_call(SLOW_BOT)
    await welcome(call)
    call.send(TextIn("slow please"))
    await asked(call, "slow please")                    # the turn has started: its timers run from now
    await call.advance(1.9)
    assert not [e for e in await call.drain() if isinstance(e, Play)]
    await call.advance(0.2)
    assert (await call.next(Play)).text == "One moment, please."
    await call.advance(2.5)                             # the bot's 3 s step, seen by the client's next poll
    assert (await call.next(Play)).text == "Here is your slow answer."
    await call.next(Listening)


async def test_a_stuck_bot_is_given_up_and_the_call_goes_on(start_call):
    call = await start_call(SLOW_BOT)
    await welcome(call)
    call.send(TextIn("stuck"))
    await asked(call, "stuck")
    await call.advance(13.5)
    assert (await call.next(Play)).text == "One moment, please."
    assert (await call.next(BotFailed)).timeout
    assert (await call.next(Play)).text.startswith("Sorry, that is taking longer")
    await call.next(Listening)
    await call.advance(60)                              # the late answer arrives for a finished turn
    call.send(TextIn("anything"))
    assert (await call.next(Play)).text == "Pardon?"
    assert "Too late." not in [p.text for p in call.since(0, Play)] and not call.conversation.closed


async def test_a_bot_reply_with_nothing_to_say_listens_again_at_once(start_call):
    """An answer a voice channel cannot say (here an image alone) must not hold the caller until the give-up."""
    call = await start_call({"welcome": [{"say": "Hello."}], "fallback": [{"say": "Pardon?"}],
                             "intents": {"picture": {"keywords": ["picture"], "steps": [
                                 {"template": {"type": "image", "payload": {"url": "https://example.com/a.png"}}}]}}})
    await welcome(call)
    start = len(call.seen)
    call.send(TextIn("picture"))
    await call.next(Listening, timeout=5)               # the manual clock never moved: no give-up, no filler
    assert call.since(start, Play) == [] and call.since(start, BotFailed) == []
