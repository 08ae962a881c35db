"""TwiML for a turn's outcome, compared with what the official `VoiceResponse` builds."""

from __future__ import annotations

import pytest
from twilio.twiml.voice_response import Dial, VoiceResponse

from adapter.calls.events import HangUp, Listening, Transfer
from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.replies import Menu, MenuOption
from adapter.doors.rest_calls import TurnResult
from adapter.doors.twilio.twiml import (
    Actions,
    Timeouts,
    busy,
    dial,
    first_key_ends_entry,
    goodbye,
    reply,
    rest_of_entry,
)

BASE = "https://voice.example.com/kv"
AUDIO = f"{BASE}/twilio/audio/tok/3.wav"
ACTIONS = Actions(BASE, 7)
TIMEOUTS = Timeouts(no_input=5, inter_digit=3, end_silence=1, max_turn=60)
MENU = Menu((MenuOption("1", "Savings", "savings"), MenuOption("2", "Checking", "checking")))
ACCOUNT = ExpectedInput(speech=False, digits=DigitSpec(min=8, max=8, finish_on_key="#"))
AMOUNT = ExpectedInput(speech=True, digits=DigitSpec(max=6, finish_on_key="*"))


def listening_twiml(listening: Listening, audio: str | None = AUDIO) -> str:
    return str(reply(TurnResult(end=listening, audio=3), audio, ACTIONS, TIMEOUTS))


def speech_or_keys(audio: str | None = AUDIO) -> VoiceResponse:
    """What a speech turn must look like: a first key cuts the prompt, else a recording, else no input."""
    expected = VoiceResponse()
    gather = expected.gather(input="dtmf", num_digits=1, finish_on_key="", timeout=1,
                             action=f"{BASE}/twilio/recording?t=7")
    if audio:
        gather.play(audio)
    expected.record(action=f"{BASE}/twilio/recording?t=7", timeout=1, max_length=60, play_beep=False,
                    trim="trim-silence", finish_on_key="0123456789*#")
    expected.redirect(f"{BASE}/twilio/recording?t=7", method="POST")
    return expected


def test_timeouts_are_whole_seconds_rounded_up():
    assert Timeouts.of(5.0, 2.5, 0.5, 60.0) == Timeouts(5, 3, 1, 60)
    assert Timeouts.of(0.5, 0.5, 1.2, 1.0) == Timeouts(1, 1, 2, 2)  # Record's maxLength is at least 2


def test_action_urls_carry_the_answer_number_and_keys_encoded():
    assert ACTIONS.url("/twilio/gather") == f"{BASE}/twilio/gather?t=7"
    assert ACTIONS.url("/twilio/gather", keys="*#1") == f"{BASE}/twilio/gather?t=7&keys=%2A%231"


def test_speech_turns_record_after_a_first_key_gather():
    assert listening_twiml(Listening()) == str(speech_or_keys())
    assert listening_twiml(Listening(menu=MENU)) == str(speech_or_keys())
    assert listening_twiml(Listening(AMOUNT)) == str(speech_or_keys())
    assert listening_twiml(Listening(), audio=None) == str(speech_or_keys(audio=None))


def test_with_twilio_speech_a_speech_turn_is_one_gather_for_speech_and_keys():
    turn = TurnResult(end=Listening(menu=MENU), audio=3)
    expected = VoiceResponse()
    expected.gather(input="dtmf speech", num_digits=1, finish_on_key="#", timeout=5,
                    action=f"{BASE}/twilio/gather?t=7", action_on_empty_result=True, speech_timeout="auto",
                    hints="Savings, Checking").play(AUDIO)
    assert str(reply(turn, AUDIO, ACTIONS, TIMEOUTS, twilio_speech=True)) == str(expected)
    keys_only = TurnResult(end=Listening(ACCOUNT), audio=3)
    assert str(reply(keys_only, AUDIO, ACTIONS, TIMEOUTS, twilio_speech=True)) == listening_twiml(Listening(ACCOUNT))


def test_keys_only_turns_gather_as_the_bot_asked():
    expected = VoiceResponse()
    expected.gather(input="dtmf", num_digits=8, finish_on_key="#", timeout=5, action=f"{BASE}/twilio/gather?t=7",
                    action_on_empty_result=True).play(AUDIO)
    assert listening_twiml(Listening(ACCOUNT)) == str(expected)
    free = listening_twiml(Listening(ExpectedInput(speech=False, digits=DigitSpec(min=2))))
    assert 'numDigits' not in free and 'finishOnKey="#"' in free


def test_the_digits_collected_are_the_conversations():
    assert Listening().digits == DigitSpec(finish_on_key="#")
    assert Listening(menu=MENU).digits == DigitSpec(num=1)
    assert Listening(AMOUNT, MENU).digits == AMOUNT.digits
    assert Listening(ExpectedInput(speech=True), MENU).digits == DigitSpec(num=1)


@pytest.mark.parametrize(("listening", "key", "whole"), [
    (Listening(menu=MENU), "2", True),
    (Listening(menu=MENU), "#", True),
    (Listening(), "5", False),
    (Listening(), "#", True),
    (Listening(AMOUNT), "4", False),
    (Listening(AMOUNT), "*", True),
    (Listening(ExpectedInput(digits=DigitSpec(num=1))), "9", True),
])
def test_a_first_key_is_a_whole_entry_only_when_it_finishes_one(listening, key, whole):
    assert first_key_ends_entry(listening, key) is whole


def test_the_rest_of_an_entry_is_gathered_silently_with_the_keys_so_far():
    expected = VoiceResponse()
    expected.gather(input="dtmf", num_digits=5, finish_on_key="*", timeout=3,
                    action=f"{BASE}/twilio/gather?t=7&keys=4", action_on_empty_result=True)
    assert str(rest_of_entry(Listening(AMOUNT), "4", ACTIONS, TIMEOUTS)) == str(expected)
    free = str(rest_of_entry(Listening(), "4", ACTIONS, TIMEOUTS))
    assert "numDigits" not in free and 'finishOnKey="#"' in free


def test_a_transfer_plays_then_dials_a_sip_uri_or_a_number():
    expected = VoiceResponse()
    expected.play(AUDIO)
    target = Dial()
    target.sip("sip:agent@bank.example")
    expected.append(target)
    assert str(reply(TurnResult(end=Transfer("sip:agent@bank.example"), audio=3), AUDIO, ACTIONS, TIMEOUTS)) == str(
        expected)
    assert dial("tel:+15550001111").to_xml(xml_declaration=False) == "<Dial><Number>+15550001111</Number></Dial>"
    assert (dial("SIPS:desk@bank.example").to_xml(xml_declaration=False)
            == "<Dial><Sip>SIPS:desk@bank.example</Sip></Dial>")


def test_a_hang_up_plays_the_goodbye_then_hangs_up():
    expected = VoiceResponse()
    expected.play(AUDIO)
    expected.hangup()
    assert str(reply(TurnResult(end=HangUp("bot"), audio=3), AUDIO, ACTIONS, TIMEOUTS)) == str(expected)
    ended = VoiceResponse()
    ended.hangup()
    assert str(reply(TurnResult(end=None), None, ACTIONS, TIMEOUTS)) == str(ended)  # the call ended under the turn


def test_apologies_and_busy_lines():
    expected = VoiceResponse()
    expected.say("Sorry. Goodbye.")
    expected.hangup()
    assert str(goodbye("Sorry. Goodbye.")) == str(expected)
    assert str(busy()) == '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy" /></Response>'
