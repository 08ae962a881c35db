"""v1/v2 bodies parsed, and messages folded into one BotReply (menus, call actions, expected input)."""

from __future__ import annotations

import json
import logging

import pytest

from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.replies import CallAction, Menu, MenuOption
from adapter.kore.errors import KoreBadResponse
from adapter.kore.replies import BotBody, BotMessage, parse_body, reply_from_messages


def buttons(text: str, *titles: str) -> dict:
    return {"type": "template", "payload": {"template_type": "button", "text": text, "buttons": [
        {"type": "postback", "title": t, "payload": t.lower()} for t in titles]}}


def test_v2_body_with_poll_id():
    body = {"data": [{"type": "text", "val": "Hi", "createdOn": "2022-05-11T06:48:50.801Z", "messageId": "ms-1"}],
            "_v": "v2", "pollId": "a69b", "to": "call-1"}
    assert parse_body("v2", body) == BotBody((BotMessage("Hi", "text", "ms-1", "2022-05-11T06:48:50.801Z"),),
                                             "a69b", False, "call-1")


def test_v2_in_progress_and_end_of_task():
    assert parse_body("v2", {"status": "Inprogress", "pollId": "p2", "_v": "v2"}) == BotBody(poll_id="p2")
    assert parse_body("v2", {"data": [], "endOfTask": True}).end_of_task is True
    assert parse_body("v2", {"data": [{"type": "text", "val": "x", "endOfTask": True}]}).end_of_task is True


@pytest.mark.parametrize("text,vals", [
    ("one", ("one",)),
    (["one", "two"], ("one", "two")),
    ({"type": "template"}, ({"type": "template"},)),
    ([], ()),
    (None, ()),
])
def test_v1_text_in_all_its_forms(text, vals):
    parsed = parse_body("v1", {"text": text, "endOfTask": True, "to": {"id": "call-9"}})
    assert tuple(m.val for m in parsed.messages) == vals
    assert (parsed.end_of_task, parsed.user_id) == (True, "call-9")


@pytest.mark.parametrize("body,message", [
    ([1, 2], "the JSON body is not an object"),
    ({"data": {"type": "text"}}, "the body's data is not a list of messages"),
    ({"data": ["text"]}, "the body's data is not a list of messages"),
])
def test_bad_shapes(body, message):
    with pytest.raises(KoreBadResponse, match=message):
        parse_body("v2", body)


def test_options_are_numbered_across_the_reply_and_read_out():
    reply = reply_from_messages([BotMessage(json.dumps(buttons("Account?", "Savings", "Checking"))),
                                    BotMessage(buttons("Or", "Agent"))])
    assert reply.prompts == ("Account? For Savings, press 1. For Checking, press 2.", "Or. For Agent, press 3.")
    assert reply.texts == ("Account?", "Or")
    assert reply.menu == Menu((MenuOption("1", "Savings", "savings"), MenuOption("2", "Checking", "checking"),
                               MenuOption("3", "Agent", "agent")))
    assert reply.menu.payload_for("2") == "checking" and reply.menu.payload_for("9") is None


def test_at_most_nine_keypad_options():
    reply = reply_from_messages([BotMessage(buttons("Pick", *[f"O{i}" for i in range(1, 12)]))])
    assert [o.digit for o in reply.menu.options] == list("123456789")
    assert "press 9." in reply.prompts[0] and "O10" not in reply.prompts[0]


def test_voice_payloads_set_action_and_expected_input():
    reply = reply_from_messages([
        BotMessage('{"text": "Enter your PIN", "voice": {"input": {"speech": false, "digits": {"num": 4}}}}'),
        BotMessage({"voice": {"action": "transfer", "to": "+18005550100"}}),
    ])
    assert reply.prompts == ("Enter your PIN.",)
    assert reply.expect == ExpectedInput(False, DigitSpec(num=4))
    assert reply.action == CallAction("transfer", "+18005550100")


def test_a_broken_voice_payload_is_ignored_with_a_warning(caplog):
    caplog.set_level(logging.WARNING)
    reply = reply_from_messages([BotMessage({"text": "Bye", "voice": {"action": "explode"}})])
    assert reply.prompts == ("Bye.",) and reply.action is None
    assert 'ignoring the bot\'s voice payload: voice action must be "hangup" or "transfer"' in caplog.text


def test_events_and_end_of_task_are_not_speech_or_hang_up():
    closure = BotMessage("SESSION_CLOSURE", "event")
    reply = reply_from_messages([closure], end_of_task=True)
    assert (reply.prompts, reply.action, reply.end_of_task, reply.messages) == ((), None, True, (closure,))


@pytest.mark.parametrize("version,body,vals", [
    ("v2", {"text": "Your balance is $12.", "_v": "v2"}, ("Your balance is $12.",)),
    ("v2", {"text": ["One.", "Two."], "_v": "v2"}, ("One.", "Two.")),
    ("v1", {"data": [{"type": "text", "val": "From data."}]}, ("From data.",)),
])
def test_a_body_is_read_from_text_or_data_whatever_the_version(version, body, vals):
    assert tuple(m.val for m in parse_body(version, body).messages) == vals


def test_a_reply_with_nothing_to_say_or_do_is_empty():
    assert reply_from_messages([]).empty is True
    assert reply_from_messages([BotMessage({"unknown": {"shape": 1}})]).empty is True
    assert reply_from_messages([], pending=True).empty is False
    assert reply_from_messages([BotMessage("Hi.")]).empty is False
    assert reply_from_messages([BotMessage({"voice": {"action": "hangup"}})]).empty is False
