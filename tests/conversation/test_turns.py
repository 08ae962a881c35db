"""The conversation engine turn by turn, fast: a scripted bot, a fake recognizer, silent prompts and a
manual clock (fakes.py). Each test asserts the exact output a door sees; "nothing happens" is the clock
moved on and nothing out.
"""

from __future__ import annotations

import pytest

from adapter.calls.bot import BotTimeout, BotUnavailable
from adapter.calls.events import (
    AudioIn,
    BotReplyIn,
    CallerHungUp,
    KeyIn,
    KeysIn,
    NoInput,
    TextIn,
    UtteranceIn,
)
from adapter.calls.info import CallInfo
from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.phase import Phase
from adapter.calls.replies import BotReply, CallAction, Menu, MenuOption
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.store import CallState
from adapter.speech.tts_worker import TtsError

from .fakes import (
    LIVE,
    TIMED,
    TURNS,
    Door,
    FakeRecognizer,
    FakeSynthesizer,
    InlinePool,
    ScriptedBot,
    Wait,
    conversation_of,
    say,
    silence,
    voice,
)
from .manual_clock import ManualClock

MENU = Menu((MenuOption("1", "Check balance", "balance"), MenuOption("2", "Transfer money", "transfer")))
MENU_PROMPT = "Welcome. For Check balance, press 1. For Transfer money, press 2."
MENU_BOT = {"welcome": [BotReply(prompts=(MENU_PROMPT,), texts=("Welcome.",), menu=MENU)],
            "answers": {"balance": [say("Your balance is 42 dollars.")],
                        "transfer": [say("Transfer to which account?")]}}


def keys(spec: DigitSpec, prompt: str = "Enter your account number.", speech: bool = False) -> BotReply:
    return say(prompt, expect=ExpectedInput(speech=speech, digits=spec))


# --- welcome ---------------------------------------------------------------------------------------


async def test_the_welcome_is_said_then_the_call_listens(fast_call):
    call = await fast_call()
    assert await call.take() == ["said Welcome.", "play Welcome.", "listening"]
    assert call.bot.received == [("ON_CONNECT", None)]
    assert call.conversation.phase == Phase.LISTENING


async def test_a_welcome_menu_is_shown_and_read(fast_call):
    call = await fast_call(bot=MENU_BOT)
    assert await call.take() == ["said Welcome.", f"play {MENU_PROMPT}", "listening menu"]
    listening = call.conversation.listening
    assert listening is not None and listening.menu == MENU and listening.digits == DigitSpec(num=1)


async def test_the_door_sees_the_phase_and_no_listening_while_the_bot_answers(fast_call):
    call = await fast_call(bot={"welcome": [Wait(1), say("Hello.")]})
    assert call.conversation.phase == Phase.BOT and call.conversation.listening is None
    await call.advance(1)
    assert call.conversation.phase == Phase.LISTENING and call.conversation.listening is not None
    await call.hang_up()
    assert call.conversation.phase == Phase.CLOSED and call.conversation.listening is None


async def test_a_welcome_in_parts_is_said_part_by_part_and_listens_after_the_last(fast_call):
    call = await fast_call(bot={"welcome": [say("Hello.", pending=True), Wait(0.5), say("How can I help?")]})
    assert await call.take() == ["said Hello.", "play Hello."]
    await call.advance(0.5)
    assert await call.take() == ["said How can I help?", "play How can I help?", "listening"]


async def test_a_welcome_with_nothing_to_say_listens_at_once(fast_call):
    call = await fast_call(bot={"welcome": [BotReply()]})
    assert await call.take() == ["listening"]


# --- menus -----------------------------------------------------------------------------------------


async def test_a_menu_key_sends_the_options_payload(fast_call):
    call = await fast_call(bot=MENU_BOT)
    await call.take()
    await call.played()
    call.send(KeyIn("1"))
    assert await call.take() == ["keys 1 -> balance", "said Your balance is 42 dollars.",
                                 "play Your balance is 42 dollars.", "listening"]
    text, meta = call.bot.received[-1]
    assert text == "balance" and (meta.mode, meta.keys) == ("dtmf", "1")


async def test_a_key_outside_the_menu_is_sent_as_it_is(fast_call):
    call = await fast_call(bot=MENU_BOT)
    await call.played()
    await call.take()
    call.send(KeyIn("7"))
    assert (await call.take())[:2] == ["keys 7 -> 7", "said Pardon?"]
    assert call.bot.texts[-1] == "7"


async def test_a_menu_option_said_by_name_sends_its_payload(fast_call):
    call = await fast_call(bot=MENU_BOT, heard=("check balance",))
    await call.take()
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    assert await call.take() == ["heard check balance", "said Your balance is 42 dollars.",
                                 "play Your balance is 42 dollars.", "listening"]
    assert call.bot.received[-1][0] == "balance" and call.bot.received[-1][1].mode == "speech"
    assert call.recognizer.decoded[-1][1] == ("Check balance", "Transfer money")  # the labels as hints


async def test_words_that_are_no_option_go_to_the_bot_as_said(fast_call):
    call = await fast_call(bot=MENU_BOT, heard=("I want a loan",))
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    assert call.bot.texts[-1] == "I want a loan"


async def test_a_menu_option_typed_as_text_is_matched_without_case_or_punctuation(fast_call):
    call = await fast_call(bot=MENU_BOT)
    call.send(TextIn("Transfer money!"))
    await call.settle()
    assert call.bot.texts[-1] == "transfer"


# --- digit entry -----------------------------------------------------------------------------------


async def entry_call(fast_call, spec: DigitSpec, **settings):
    call = await fast_call(bot={"welcome": [keys(spec)], "fallback": [say("Thanks.")]}, **settings)
    await call.played()
    assert await call.take() == ["said Enter your account number.", "play Enter your account number.",
                                 "listening keys"]
    return call


async def press(call, keys: str) -> list[str]:
    for key in keys:
        call.send(KeyIn(key))
    return await call.take()


async def test_a_fixed_count_entry_ends_on_its_last_key(fast_call):
    call = await entry_call(fast_call, DigitSpec(num=4))
    assert await press(call, "123") == []
    assert await press(call, "4") == ["keys 1234 -> 1234", "said Thanks.", "play Thanks.", "listening"]
    assert call.bot.received[-1][1].keys == "1234"


async def test_the_finish_key_ends_an_entry_early_and_is_sent_as_pressed(fast_call):
    call = await entry_call(fast_call, DigitSpec(min=2, max=10))
    assert (await press(call, "123#"))[0] == "keys 123 -> 123"
    assert call.bot.received[-1][1].keys == "123#"


async def test_a_custom_finish_key_makes_hash_an_ordinary_key(fast_call):
    call = await entry_call(fast_call, DigitSpec(max=4, finish_on_key="*"))
    assert (await press(call, "1#2*"))[0] == "keys 1#2 -> 1#2"


async def test_finishing_below_the_minimum_is_a_no_match(fast_call):
    call = await entry_call(fast_call, DigitSpec(min=4, max=8))
    assert await press(call, "12#") == ["play Sorry, I didn't catch that.", "listening keys"]
    assert call.bot.texts == ["ON_CONNECT"] and call.conversation.state.no_match == 1


async def test_the_maximum_ends_the_entry_without_the_finish_key(fast_call):
    call = await entry_call(fast_call, DigitSpec(min=2, max=3))
    assert (await press(call, "987"))[0] == "keys 987 -> 987"


async def test_the_inter_digit_timeout_ends_an_entry_with_what_was_typed(fast_call):
    call = await entry_call(fast_call, DigitSpec(min=2, max=10))
    assert await press(call, "12") == []
    assert (await call.after(3))[0] == "keys 12 -> 12"


async def test_each_key_restarts_the_inter_digit_timeout(fast_call):
    call = await entry_call(fast_call, DigitSpec(min=2, max=10))
    await press(call, "1")
    await call.advance(2.5)
    await press(call, "2")
    await call.advance(2.5)
    assert await call.take() == []
    await call.advance(0.5)
    assert (await call.take())[0] == "keys 12 -> 12"


async def test_the_inter_digit_timeout_below_the_minimum_is_a_no_match(fast_call):
    call = await entry_call(fast_call, DigitSpec(min=4), inter_digit_s=2.0)
    await press(call, "12")
    await call.advance(2)
    assert await call.take() == ["play Sorry, I didn't catch that.", "listening keys"]


async def test_keys_only_entry_ignores_speech(fast_call):
    call = await entry_call(fast_call, DigitSpec(num=4))
    await call.speak(voice(1.0) + silence(1.0))
    assert await call.take() == [] and call.recognizer.decoded == []


async def test_a_whole_entry_from_a_request_response_door_ends_at_once(fast_call):
    call = await fast_call(audio=TURNS, bot={"welcome": [keys(DigitSpec(min=2, max=10))],
                                             "fallback": [say("Thanks.")]})
    await call.take()
    call.send(KeysIn("2024"))
    assert await call.take() == ["keys 2024 -> 2024", "said Thanks.", "play Thanks.", "listening"]


async def test_a_free_entry_while_listening_for_speech_ends_with_hash(fast_call):
    call = await fast_call()
    await call.played()
    await call.take()
    assert await press(call, "55") == []
    assert (await press(call, "#"))[0] == "keys 55 -> 55"


# --- barge-in --------------------------------------------------------------------------------------


LONG = "A very long prompt."


async def long_prompt_call(fast_call, audio=LIVE, **settings):
    call = await fast_call(bot={"welcome": [say(LONG)], "fallback": [say("Pardon?")]}, audio=audio,
                           durations={LONG: 30.0}, heard=("hello there",), **settings)
    assert (await call.take())[0] == f"said {LONG}"
    return call


async def test_speech_cuts_a_prompt_that_allows_it(fast_call):
    call = await long_prompt_call(fast_call)
    await call.speak(voice(0.8) + silence(0.8))
    assert await call.take() == ["clear", "heard hello there", "said Pardon?", "play Pardon?", "listening"]


async def test_a_click_does_not_cut_a_prompt(fast_call):
    call = await long_prompt_call(fast_call)
    await call.speak(silence(0.3) + voice(0.1) + silence(1.0))
    assert await call.take() == [] and call.recognizer.decoded == []


async def test_a_key_cuts_a_prompt_that_allows_it(fast_call):
    call = await long_prompt_call(fast_call)
    call.send(KeyIn("5"))
    call.send(KeyIn("#"))
    assert (await call.take())[:2] == ["clear", "keys 5 -> 5"]


async def test_speech_on_a_timed_line_cuts_the_prompt_while_it_plays(fast_call):
    call = await long_prompt_call(fast_call, audio=TIMED)
    await call.advance(5)
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[:2] == ["clear", "heard hello there"]


async def test_speech_on_a_timed_line_after_the_prompt_ended_cuts_nothing(fast_call):
    call = await fast_call(audio=TIMED, heard=("hello",))
    await call.take()
    await call.advance(1.5)
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[:1] == ["heard hello"]


async def test_no_barge_in_when_switched_off(fast_call):
    call = await long_prompt_call(fast_call, barge_in=False)
    await call.speak(voice(0.8) + silence(0.8))
    call.send(KeyIn("5"))
    await call.advance(1)
    assert await call.take() == [] and call.bot.texts == ["ON_CONNECT"]


async def test_speech_after_a_no_barge_prompt_has_played_is_heard(fast_call):
    call = await long_prompt_call(fast_call, barge_in=False)
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[:1] == ["heard hello there"]


async def test_a_goodbye_cannot_be_cut(fast_call):
    call = await fast_call(max_no_input=0, durations={"Sorry, I still can't hear you. Please call again. Goodbye.": 9})
    await call.played()
    await call.take()
    await call.advance(5)
    assert await call.take() == ["play! Sorry, I still can't hear you. Please call again. Goodbye.",
                                 "hangup no input"]


# --- no input, no match ----------------------------------------------------------------------------


NOT_CAUGHT = "play Sorry, I didn't catch that."
NO_INPUT_BYE = "play! Sorry, I still can't hear you. Please call again. Goodbye."
NO_MATCH_BYE = "play! Sorry, I can't understand you right now. Please call again. Goodbye."


async def ended_once(call, reason: str) -> None:
    """The call is closed for `reason`, and a door's hang-up after it sends no second SESSION_CLOSURE."""
    await call.hang_up()
    await call.hang_up()
    assert call.conversation.closed and call.conversation.state.closed_reason == reason
    assert call.bot.closures == 1 and call.pool.dropped == [call.conversation.call.user_id]


async def test_no_input_waits_for_the_prompt_to_be_played(fast_call):
    call = await fast_call()
    await call.take()
    await call.advance(30)
    assert await call.take() == []  # the door has not said the welcome has played
    await call.played()
    assert await call.after(5) == ["play Welcome."]


async def test_no_input_reprompts_then_says_goodbye(fast_call):
    call = await fast_call()
    await call.take()
    for _ in range(3):
        await call.played()
        await call.advance(5)
        assert await call.take() == ["play Welcome."]
    await call.played()
    await call.advance(5)
    assert await call.take() == [NO_INPUT_BYE, "hangup no input"]
    await ended_once(call, "no input")


async def test_no_input_on_a_timed_line_counts_from_the_end_of_the_prompt(fast_call):
    call = await fast_call(audio=TIMED, durations={"Welcome.": 3.0})
    await call.take()
    assert await call.after(8) == ["play Welcome."]


async def test_speech_resets_the_no_input_count(fast_call):
    call = await fast_call(heard=("hello",), max_no_input=1)
    await call.played()
    await call.advance(5)
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    await call.played()
    await call.take()
    assert call.conversation.state.no_input == 0
    await call.advance(5)
    assert await call.take() == ["play Pardon?"]


async def test_a_request_response_doors_no_input_reprompts_and_listens(fast_call):
    call = await fast_call(audio=TURNS)
    await call.take()
    call.send(NoInput())
    assert await call.take() == ["play Welcome.", "listening"]
    await call.advance(60)
    assert await call.take() == []  # no timers on a request/response door


async def test_nothing_heard_is_a_no_match_then_goodbye(fast_call):
    call = await fast_call(heard=("", "", "", ""))
    await call.take()
    for _ in range(3):
        await call.played()
        await call.speak(voice(0.8) + silence(0.8))
        assert await call.take() == [NOT_CAUGHT, "listening"]
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    assert await call.take() == [NO_MATCH_BYE, "hangup no match"]
    assert call.bot.texts == ["ON_CONNECT"]
    await ended_once(call, "no match")


async def test_low_confidence_is_a_no_match(fast_call):
    call = await fast_call(heard=("maybe",), min_confidence=0.95)
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    assert await call.take() == ["said Welcome.", "play Welcome.", "listening", NOT_CAUGHT, "listening"]


async def test_an_empty_recording_is_a_no_match(fast_call):
    call = await fast_call(audio=TURNS)
    await call.take()
    call.send(UtteranceIn(silence(1.0)))
    assert await call.take() == [NOT_CAUGHT, "listening"]


async def test_a_recording_is_heard_by_the_recognizer(fast_call):
    call = await fast_call(audio=TURNS, heard=("check balance",), bot=MENU_BOT)
    await call.take()
    call.send(UtteranceIn(voice(1.0)))
    assert (await call.take())[:2] == ["heard check balance", "said Your balance is 42 dollars."]


async def test_speech_when_the_bot_asked_for_keys_only_in_a_recording_is_a_no_match(fast_call):
    call = await fast_call(audio=TURNS, heard=("hello",), bot={"welcome": [keys(DigitSpec(num=4))]})
    await call.take()
    call.send(UtteranceIn(voice(1.0)))
    assert await call.take() == [NOT_CAUGHT, "listening keys"]
    assert call.recognizer.decoded == []


async def test_a_recognizer_failure_is_heard_as_nothing_and_the_call_goes_on(fast_call):
    call = await fast_call(heard=(RuntimeError("the decoder crashed"), "hello"), speculate_ms=0)
    await call.played()
    await call.take()
    await call.speak(voice(0.8) + silence(0.8))
    assert await call.take() == [NOT_CAUGHT, "listening"]
    await call.played()
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[0] == "heard hello"


async def test_a_failed_early_decode_is_decoded_again_at_the_end(fast_call):
    call = await fast_call(heard=(RuntimeError("the decoder crashed"), "hello"))
    await call.played()
    await call.take()
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[0] == "heard hello" and len(call.recognizer.decoded) == 2


async def test_an_early_decode_is_the_answer_when_the_caller_has_finished(fast_call):
    call = await fast_call(heard=("hello",))
    await call.played()
    await call.take()
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[0] == "heard hello" and len(call.recognizer.decoded) == 1


async def test_a_transcript_that_comes_after_keys_won_over_the_speech_is_dropped(fast_call):
    call = await fast_call(heard=("hello",), speculate_ms=0)
    await call.played()
    await call.take()
    call.pool.open.clear()
    await call.speak(voice(0.8) + silence(0.8))  # the decode waits for the recognizer
    call.pool.open.set()  # it ends, and its transcript is posted after the key below
    call.send(KeyIn("5"))
    assert await call.take() == []
    assert await call.after(3) == ["keys 5 -> 5", "said Pardon?", "play Pardon?", "listening"]
    assert call.bot.texts == ["ON_CONNECT", "5"]


async def test_a_recognizer_failure_in_a_recording_is_a_no_match(fast_call):
    call = await fast_call(audio=TURNS, heard=(RuntimeError("the decoder crashed"),))
    await call.take()
    call.send(UtteranceIn(voice(1.0)))
    assert await call.take() == [NOT_CAUGHT, "listening"]


async def test_a_streaming_recognizer_gives_partial_text_then_the_final(fast_call):
    call = await fast_call(heard=("check my balance",), streaming=True)
    await call.played()
    await call.take()
    await call.speak(voice(0.8) + silence(0.8))
    assert (await call.take())[:2] == ["partial check", "heard check my balance"]


async def test_an_utterance_is_cut_at_the_length_cap(fast_call):
    from adapter.conversation.endpointing import EndpointSettings
    call = await fast_call(heard=("a long story",), endpoint=EndpointSettings(max_utterance_s=2.0))
    await call.played()
    await call.take()
    await call.speak(voice(3.0))
    assert (await call.take())[0] == "heard a long story"
    assert call.recognizer.decoded[0][0] <= 2.0


# --- the bot: slow, stuck, failing, late -----------------------------------------------------------


SLOW = {"answers": {"slow": [Wait(3), say("Here it is.")], "stuck": [Wait(60), say("Too late.")]}}


async def asked(fast_call, bot, text: str, **settings):
    call = await fast_call(bot=bot, **settings)
    await call.played()
    await call.take()
    call.send(TextIn(text))
    return call


async def test_a_slow_bot_gets_a_filler_then_its_answer(fast_call):
    call = await asked(fast_call, SLOW, "slow")
    assert await call.take() == ["heard slow"]
    assert await call.after(2) == ["play One moment, please."]
    await call.advance(1)
    assert await call.take() == ["said Here it is.", "play Here it is.", "listening"]


async def test_a_bot_that_has_begun_to_answer_gets_no_filler(fast_call):
    call = await asked(fast_call, {"answers": {"two": [say("First part.", pending=True), Wait(3), say("Rest.")]}},
                       "two")
    assert await call.take() == ["heard two", "said First part.", "play First part."]
    assert await call.after(3) == ["said Rest.", "play Rest.", "listening"]


async def test_a_quick_bot_gets_no_filler(fast_call):
    call = await asked(fast_call, {"answers": {"quick": [Wait(1.5), say("Done.")]}}, "quick")
    assert await call.take() == ["heard quick"]
    await call.advance(1.5)
    assert await call.take() == ["said Done.", "play Done.", "listening"]
    await call.advance(20)
    assert "play One moment, please." not in await call.take()


async def test_a_stuck_bot_is_given_up_and_its_late_answer_dropped(fast_call):
    call = await asked(fast_call, SLOW, "stuck")
    assert await call.take() == ["heard stuck"]
    await call.advance(13)
    assert await call.take() == ["play One moment, please.", "bot timeout",
                                 "play Sorry, that is taking longer than expected. Please try again.", "listening"]
    await call.advance(60)
    await call.played()
    assert "said Too late." not in await call.take()
    assert not call.conversation.closed


async def test_the_give_up_time_is_a_setting(fast_call):
    call = await asked(fast_call, SLOW, "stuck", bot_giveup_s=4.0, filler_after_s=10.0)
    assert await call.take() == ["heard stuck"]
    assert (await call.after(4))[0] == "bot timeout"


@pytest.mark.parametrize(("error", "said"), [
    (BotUnavailable("HTTP 500"), ["bot error", "play Sorry, something went wrong on our side. Please try again."]),
    (BotTimeout("no answer"), ["bot timeout", "play Sorry, that is taking longer than expected. Please try again."]),
])
async def test_a_failing_bot_is_apologised_for_and_the_call_goes_on(fast_call, error, said):
    call = await asked(fast_call, {"answers": {"x": [error]}}, "x")
    assert await call.take() == ["heard x", *said, "listening"]
    call.send(TextIn("y"))
    assert (await call.take())[:2] == ["heard y", "said Pardon?"]


async def test_a_bot_down_at_the_welcome_ends_the_call(fast_call):
    call = await fast_call(bot={"welcome": [BotUnavailable("connection refused")]})
    assert await call.take() == [
        "bot error", "play! Sorry, this service is not available right now. Please call again later. Goodbye.",
        "hangup bot unavailable"]
    await ended_once(call, "bot unavailable")


async def test_an_async_reply_arrives_later_through_the_inbox(fast_call):
    call = await asked(fast_call, {"answers": {"hi": [BotReply(pending=True)]}}, "hi")
    assert await call.take() == ["heard hi"]
    await call.advance(1)
    assert await call.take() == []
    call.send(BotReplyIn(say("Hello from the callback.")))
    assert await call.take() == ["said Hello from the callback.", "play Hello from the callback.", "listening"]


async def test_a_late_async_message_restarts_the_time_to_answer(fast_call):
    call = await asked(fast_call, {"answers": {"hi": [BotReply(pending=True)]}}, "hi")
    assert await call.take() == ["heard hi"]
    call.send(BotReplyIn(say("First.")))
    await call.played()
    await call.advance(4)
    call.send(BotReplyIn(say("Second.")))
    await call.played()
    await call.take()
    assert await call.after(5) == ["play Second."]


async def test_a_bot_reply_with_nothing_to_say_listens_at_once(fast_call):
    call = await asked(fast_call, {"answers": {"pic": [BotReply(texts=("[image]",))]}}, "pic")
    assert await call.take() == ["heard pic", "said [image]", "listening"]  # the clock never moved


# --- the end ---------------------------------------------------------------------------------------


async def test_the_bot_hangs_up_after_its_goodbye(fast_call):
    call = await asked(fast_call, {"answers": {"bye": [say("Goodbye!", action=CallAction("hangup"))]}}, "bye")
    assert await call.take() == ["heard bye", "said Goodbye!", "play Goodbye!", "hangup the bot ended the call"]
    await ended_once(call, "bot hung up")


async def test_the_bot_transfers_the_call(fast_call):
    transfer = say("Connecting you.", action=CallAction("transfer", "sip:a@b"))
    call = await fast_call(bot={"answers": {"agent": [transfer]}})
    await call.played()
    await call.take()
    call.send(TextIn("agent"))
    assert await call.take() == ["heard agent", "said Connecting you.", "play Connecting you.", "transfer sip:a@b"]
    await ended_once(call, "transferred")


async def test_a_transfer_without_a_target_hangs_up(fast_call):
    call = await fast_call(bot={"welcome": [BotReply(action=CallAction("transfer"))]})
    assert await call.take() == ["hangup the bot ended the call"]
    await ended_once(call, "bot hung up")


async def test_the_caller_hangs_up_mid_prompt(fast_call):
    call = await fast_call(durations={"Welcome.": 20})
    await call.take()
    call.send(CallerHungUp())
    assert await call.take() == []
    await ended_once(call, "caller hung up")


async def test_the_caller_hangs_up_while_the_bot_answers(fast_call):
    call = await asked(fast_call, SLOW, "stuck")
    assert await call.take() == ["heard stuck"]
    await call.hang_up()
    await call.advance(60)
    assert await call.take() == []
    await ended_once(call, "caller hung up")


async def test_the_caller_hangs_up_mid_recognition(fast_call):
    call = await fast_call(heard=("hello",))
    await call.played()
    await call.take()
    call.pool.open.clear()  # the recognizer is busy: the decode waits
    await call.speak(voice(0.8) + silence(0.8))
    await call.hang_up()
    call.pool.open.set()
    assert await call.take() == []
    assert call.bot.texts == ["ON_CONNECT"]
    await ended_once(call, "caller hung up")


async def test_the_caller_hangs_up_mid_entry(fast_call):
    call = await entry_call(fast_call, DigitSpec(num=4))
    await press(call, "12")
    await call.hang_up()
    await call.advance(10)
    assert await call.take() == []
    await ended_once(call, "caller hung up")


async def test_a_failed_session_closure_still_ends_the_call(fast_call):
    call = await fast_call()
    call.bot.fail_closure = True
    await ended_once(call, "caller hung up")


def unstarted(bot: dict | None = None, audio=TURNS, resumed: CallState | None = None, **settings) -> Door:
    """A call opened but not yet run: its loop has not taken a step (what a door holds right after open_call)."""
    clock = ManualClock()
    pool = InlinePool()
    conversation = conversation_of(clock, ScriptedBot(clock, **(bot or {})), FakeRecognizer(), FakeSynthesizer(),
                                   pool, audio, ConversationSettings(**settings), resumed)
    return Door(conversation, conversation.services.bot, conversation.services.recognizer,  # type: ignore[arg-type]
                conversation.services.synthesizer, clock, pool)  # type: ignore[arg-type]


async def test_a_call_hung_up_before_its_welcome_was_asked_sends_the_bot_nothing():
    call = unstarted()
    call.conversation.start()
    await call.hang_up()  # the hang-up is in the inbox before the loop's first step
    await call.advance(60)
    assert call.bot.received == [] and call.bot.closures == 0  # no ON_CONNECT, so no SESSION_CLOSURE either
    assert call.conversation.closed and await call.take() == []


async def test_a_call_hung_up_while_its_welcome_is_on_the_way_closes_the_session_once():
    call = unstarted(bot={"welcome": [Wait(5), say("Welcome.")]})
    call.conversation.start()
    await call.settle()
    await call.hang_up()
    await call.advance(60)
    assert call.bot.received == [("ON_CONNECT", None)] and call.bot.closures == 1
    assert await call.take() == []


def stored_listening(call: CallInfo) -> CallState:
    return CallState(call, Phase.LISTENING, MENU, None, MENU_PROMPT, no_input=1, turns=1)


async def test_a_resumed_call_listens_where_it_was_without_a_new_welcome():
    stored = stored_listening(CallInfo.new("rest", "+15551230000"))
    call = unstarted(bot=MENU_BOT, resumed=stored)
    call.conversation.start()
    assert await call.take() == []  # no welcome again, and no word: its last answer was given elsewhere
    assert call.conversation.listening is not None and call.conversation.listening.menu == MENU
    call.send(KeysIn("1"))  # the menu it stored: one key chooses
    assert await call.take() == ["keys 1 -> balance", "said Your balance is 42 dollars.",
                                 "play Your balance is 42 dollars.", "listening"]
    assert call.bot.texts == ["RESUMED", "balance"]  # the same session: no ON_CONNECT
    assert call.conversation.state.turns == 2
    await call.hang_up()
    assert call.bot.closures == 1  # the session it resumed is closed from here


async def test_a_resumed_call_keeps_its_retry_counts():
    call = unstarted(bot=MENU_BOT, resumed=stored_listening(CallInfo.new("rest")), max_no_input=1)
    call.conversation.start()
    call.send(NoInput())  # its second no-input: past KORE_VOICE_MAX_NO_INPUT=1
    assert (await call.take())[-1] == "hangup no input"
    assert call.bot.closures == 1


async def test_a_prompt_that_cannot_be_rendered_is_skipped_and_the_call_goes_on(fast_call):
    call = await fast_call(bot={"answers": {"x": [say("Unsayable.")]}})
    call.synthesizer.broken["Unsayable."] = TtsError("espeak-ng crashed")
    call.send(TextIn("x"))
    assert (await call.take())[-3:] == ["heard x", "said Unsayable.", "listening"]
    assert not call.conversation.closed


async def test_an_internal_error_ends_the_call_with_an_apology(fast_call):
    call = await fast_call(bot={"answers": {"x": [say("Crash.")]}})
    call.synthesizer.broken["Crash."] = RuntimeError("a bug")
    call.send(TextIn("x"))
    assert (await call.take())[-3:] == ["said Crash.",
                                        "play! Sorry, something went wrong on our side. Please try again.",
                                        "hangup internal error"]
    await ended_once(call, "internal error")


async def test_input_after_the_end_is_ignored(fast_call):
    call = await fast_call()
    await call.hang_up()
    call.send(TextIn("hello"))
    call.send(KeyIn("1"))
    await call.advance(10)
    assert call.bot.texts == ["ON_CONNECT"]
    await ended_once(call, "caller hung up")


async def test_audio_faster_than_real_time_ends_the_call(fast_call):
    call = await fast_call(max_audio_ahead_s=2.0)
    await call.take()
    for _ in range(200):  # 4 s of audio at one moment of the clock
        call.send(AudioIn(bytes(320)))
    assert await call.take() == ["hangup audio faster than real time"]
    await ended_once(call, "audio 2 s ahead of real time")
