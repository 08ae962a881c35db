"""Templates and text flattened for voice (specs §4.7-4.8), including v1's HTML-escaped JSON strings."""

from __future__ import annotations

import html
import json

import pytest

from adapter.kore.flatten import Flat, Option, flatten, parse_val


def escaped(obj: dict) -> str:
    """How v1 delivers a template: JSON with HTML entities (BOTIUM richElements fixtures)."""
    return html.escape(json.dumps(obj))


BUTTON = {"type": "template", "payload": {"template_type": "button", "text": "sometext", "buttons": [
    {"type": "postback", "title": "Button1", "payload": "button1", "value": "button1"},
    {"type": "web_url", "title": "Website", "url": "https://example.com"},
    {"type": "postback", "title": "Button2", "value": "b2"}]}, "allPostbackButtons": []}


def test_parse_val_accepts_objects_json_and_escaped_json():
    assert parse_val(BUTTON) is BUTTON
    assert parse_val(json.dumps(BUTTON)) == BUTTON
    assert parse_val(escaped(BUTTON)) == BUTTON
    assert parse_val("  plain &amp; simple ") == "plain & simple"
    assert parse_val("{not json") == "{not json"


def test_button_template_gives_text_and_selectable_options():
    assert flatten(escaped(BUTTON)) == Flat("sometext", "sometext.", (Option("Button1", "button1"),
                                                                         Option("Button2", "b2")))


def test_quick_replies_from_a_v2_json_string():
    val = ('{"type":"template","payload":{"template_type":"quick_replies","text":"Pick a color:","quick_replies":'
           '[{"content_type":"text","title":"Red","payload":"RED"},{"content_type":"text","title":"Green",'
           '"payload":"GREEN"}]}}')
    assert flatten(val) == Flat("Pick a color:", "Pick a color:", (Option("Red", "RED"), Option("Green", "GREEN")))


def test_list_template_reads_elements_and_offers_their_buttons_then_its_own():
    val = {"type": "template", "payload": {"template_type": "list", "elements": [
        {"title": "Savings", "subtitle": "ending 3984", "buttons": [{"type": "postback", "title": "Savings",
                                                                    "payload": "acct-savings"}]},
        {"title": "Checking", "subtitle": "ending 9964"}],
        "buttons": [{"type": "postback", "title": "View more", "payload": "more"}]}}
    assert flatten(val) == Flat("Savings ending 3984\nChecking ending 9964",
                                "Savings ending 3984. Checking ending 9964.",
                                (Option("Savings", "acct-savings"), Option("Checking", "Checking"),
                                 Option("View more", "more")))


def test_carousel_elements_with_buttons():
    val = {"type": "template", "payload": {"template_type": "carousel", "elements": [
        {"title": "Gold card", "subtitle": "2% back", "buttons": [{"type": "postback", "title": "Gold", "payload": "g"},
                                                                 {"type": "web_url", "title": "Terms", "url": "u"}]},
        {"title": "Blue card", "subtitle": "no fee",
         "buttons": [{"type": "postback", "title": "Blue", "payload": "b"}]}]}}
    flat = flatten(val)
    assert flat.speech == "Gold card 2% back. Blue card no fee."
    assert flat.options == (Option("Gold", "g"), Option("Blue", "b"))


def test_speech_hint_is_preferred_for_speech_but_not_for_display():
    val = {"type": "template", "payload": {"template_type": "button", "text": "Choose *one*:",
                                           "speech_hint": "Which one would you like?",
                                           "buttons": [{"type": "postback", "title": "A", "payload": "a"}]}}
    assert flatten(val) == Flat("Choose one:", "Which one would you like?", (Option("A", "a"),))


def test_v1_confirmation_rendering_becomes_yes_no_options():
    flat = flatten("This is a confirmation\nsecond line\nYes, No, ")
    assert flat == Flat("This is a confirmation\nsecond line", "This is a confirmation. second line.",
                        (Option("Yes", "Yes"), Option("No", "No")))


def test_markdown_is_stripped_and_urls_are_not_spoken():
    flat = flatten("*Bold* _italic_ ~strike~ and [the site](https://example.com) https://example.com/x")
    assert flat.text == "Bold italic strike and the site https://example.com/x"
    assert flat.speech == "Bold italic strike and the site."


@pytest.mark.parametrize("val,text", [
    ({"file": {"type": "link", "payload": {"url": "https://x/logo.png", "title": "This is cyara logo",
                                           "template_type": "attachment"}}}, "This is cyara logo"),
    ({"text": "Hello {{name}}", "variables": {"name": "x"}}, "Hello {{name}}"),
    ({"type": "error", "payload": {"text": "Something went wrong"}}, "Something went wrong"),
    ({"type": "template", "payload": {"template_type": "feedbackTemplate", "text": "Rate us",
                                      "numbersArrays": [{"value": 1}]}}, "Rate us"),
    ({"type": "template", "payload": {"template_type": "live_agent", "text": "An agent will join"}},
     "An agent will join"),
])
def test_other_templates_say_their_text(val, text):
    flat = flatten(escaped(val))
    assert flat.text == text and flat.options == ()


def test_unknown_shapes_say_nothing():
    assert flatten({"RichContentEvent": {"type": "vertical"}}) == Flat()
    assert flatten(42) == Flat()
    assert flatten(None) == Flat()


def test_the_voice_payload_is_carried_and_arrays_are_merged():
    flat = flatten('[{"text": "Bye"}, {"voice": {"action": "hangup"}}]')
    assert flat == Flat("Bye", "Bye.", (), {"action": "hangup"})


# A Webhook-channel override in LivePerson's structured-content shape, as Kore passes it through (v1:
# HTML-escaped, strings inside escaped once more); the same shape as BOTIUM's richElements fixtures.
RICH_CONTENT = {"type": "RichContentEvent", "content": {"type": "vertical", "elements": [
    {"type": "vertical", "elements": [{"type": "vertical", "elements": [
        {"type": "text", "text": "Reward points", "style": {"size": "small", "color": "#666666"}},
        {"type": "text", "text": "12,345", "tooltip": "12,345", "style": {"bold": True}}]}]},
    {"type": "accordion", "text": "Cards earning points", "elements": [{"type": "vertical", "elements": [
        {"type": "text", "text": "Rewards Card &amp; Co - 1234", "style": {"size": "small"}}]}]},
    {"type": "button", "title": "Redeem points", "tooltip": "Redeem points",
     "click": {"actions": [{"type": "publishText", "text": "redeem"}]}},
    {"type": "button", "title": "Open the web site", "click": {"actions": [
        {"type": "link", "uri": "app://home", "web": {"uri": "https://example.com/points"}}]}},
    {"type": "button", "title": "Something else", "click": {"actions": [{"type": "publishText",
                                                                          "text": "Something else"}]}}]}}


def test_rich_content_event_is_said_in_order_and_its_buttons_are_the_menu():
    flat = flatten(escaped(RICH_CONTENT))
    assert flat.text == "Reward points\n12,345\nCards earning points\nRewards Card & Co - 1234"
    assert flat.speech == "Reward points. 12,345. Cards earning points. Rewards Card & Co - 1234."
    assert flat.options == (Option("Redeem points", "redeem"), Option("Something else", "Something else"))


def test_content_event_quick_replies_are_options():
    val = {"type": "ContentEvent", "contentType": "text/plain", "message": "Credit card or bank account?",
           "quickReplies": {"type": "quickReplies", "replies": [
               {"type": "button", "title": "Credit card", "click": {"actions": [{"type": "publishText",
                                                                                  "text": "Credit card"}]}},
               {"type": "button", "title": "Bank account", "click": {"actions": [{"type": "publishText",
                                                                                   "text": "Bank account"}]}}]}}
    flat = flatten(val)
    assert flat.speech == "Credit card or bank account?"
    assert flat.options == (Option("Credit card", "Credit card"), Option("Bank account", "Bank account"))


def test_any_other_json_template_says_its_titles_and_offers_its_payload_buttons():
    val = {"kind": "advanced", "header": {"title": "Your accounts"},
           "rows": [{"title": "Savings", "subtitle": "ending 3984", "image_url": "https://x/s.png"},
                    {"title": "Open an account", "payload": "open-account"}]}
    flat = flatten(val)
    assert flat.speech == "Your accounts. Savings. ending 3984."
    assert flat.options == (Option("Open an account", "open-account"),)
