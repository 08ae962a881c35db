"""Bot scripts: the YAML format, its errors, and the dialogs the built-in banking IVR runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.kore.simulator.bots import Batch, BotEngine, Turn
from adapter.kore.simulator.script import ScriptError, load_script, parse_script


def texts(turn: Turn) -> list:
    return [m["text"] if isinstance(m, dict) and "text" in m else m for b in turn.batches for m in b.messages]


@pytest.fixture
def bank() -> BotEngine:
    return BotEngine(load_script())


def test_the_default_bot_welcomes_with_a_menu(bank):
    turn = bank.connect("u")
    assert turn.batches[0].messages[0] == "Welcome to **Demo Bank**."
    menu = turn.batches[0].messages[1]
    assert menu["payload"]["template_type"] == "button"
    assert [b["payload"] for b in menu["payload"]["buttons"]] == ["balance", "transfer", "agent"]


def test_transfer_collects_account_and_amount_then_works_slowly(bank):
    bank.connect("u")
    ask = bank.hear("u", "transfer")
    assert ask.batches[0].messages[0]["voice"] == {"input": {"speech": False,
                                                             "digits": {"min": 8, "max": 8, "finishOnKey": "#"}}}
    retry = bank.hear("u", "1234")
    assert texts(retry) == ["That was not an 8 digit account number. Please enter it again, then press hash."]
    amount = bank.hear("u", "1234 5678#")
    assert texts(amount) == ["How many dollars would you like to send? Say the amount or enter it on the keypad."]
    done = bank.hear("u", "250")
    assert done.batches == (
        Batch(0.0, ("One moment while I make the transfer.",)),
        Batch(2.0, ("Done. I sent 250 dollars to account 1 2 3 4 5 6 7 8.",
                    "Is there anything else? You can say balance, agent, or goodbye.")))
    assert done.completed_task == "transfer"


def test_another_intent_interrupts_a_question(bank):
    bank.hear("u", "transfer")
    turn = bank.hear("u", "get me an agent")
    assert turn.batches[0].messages[0]["voice"] == {"action": "transfer", "to": "sip:agent@demo-bank.example"}
    assert turn.completed_task == "agent"


def test_fallback_and_goodbye(bank):
    assert texts(bank.hear("u", "pizza")) == ["Sorry, I didn't catch that. You can say balance, transfer, or agent."]
    bye = bank.hear("u", "no thanks, goodbye")
    assert bye.batches[0].messages == ({"text": "Thank you for calling Demo Bank. Goodbye!",
                                        "voice": {"action": "hangup"}},)


def test_close_reports_whether_a_session_existed(bank):
    assert bank.close("u") is False
    bank.connect("u")
    assert bank.close("u") is True


def test_fail_steps_fail_the_first_times_then_pass():
    engine = BotEngine(parse_script({"welcome": [{"say": "Hi"}], "fallback": [{"say": "?"}], "intents": {
        "flaky": {"keywords": ["flaky"], "steps": [{"fail": {"status": 503, "times": 2}}, {"say": "Ok"}]}}}))
    assert [engine.hear("u", "flaky").fail_status for _ in range(3)] == [503, 503, None]
    assert texts(engine.hear("u", "flaky")) == ["Ok"]


def test_speech_hints_and_quick_replies_and_regex():
    script = parse_script({"welcome": [{"say": {"text": "**Hi**", "speech_hint": "Hello there"}}],
                           "fallback": [{"say": "?"}],
                           "intents": {"color": {"regex": r"colou?r", "steps": [{"menu": {
                               "text": "Pick", "kind": "quick_replies",
                               "options": [{"title": "Red", "payload": "R"}]}}]}}})
    engine = BotEngine(script)
    assert engine.connect("u").batches[0].messages[0] == {"type": "template", "payload": {"text": "**Hi**",
                                                                                          "speech_hint": "Hello there"}}
    menu = engine.hear("u", "my favourite colour").batches[0].messages[0]
    assert menu["payload"]["quick_replies"] == [{"content_type": "text", "title": "Red", "payload": "R"}]


@pytest.mark.parametrize("data,message", [
    ([], "script: a script is a mapping with name, welcome, fallback and intents"),
    ({"welcome": [], "fallback": [{"say": "?"}]}, "script: welcome: steps must be a non-empty list"),
    ({"welcome": [{"say": "Hi"}], "fallback": [{"shout": "?"}]},
     "script: fallback step 1: cannot read step 'shout'"),
    ({"welcome": [{"say": "Hi", "wait": 1}], "fallback": [{"say": "?"}]},
     "script: welcome step 1: a step is a mapping with one key (say, menu, template, voice, ask, wait, fail)"),
    ({"welcome": [{"say": "Hi"}], "fallback": [{"say": "?"}], "intents": {"x": {"steps": [{"say": "x"}]}}},
     "script: intent x: needs keywords or regex"),
    ({"welcome": [{"say": "Hi"}], "fallback": [{"say": "?"}],
      "intents": {"x": {"regex": "(", "steps": [{"say": "x"}]}}},
     "script: intent x: bad regex: missing ), unterminated subpattern at position 0"),
    ({"welcome": [{"menu": {"text": "m", "options": [{"payload": "p"}]}}], "fallback": [{"say": "?"}]},
     "script: welcome step 1: menu options are a list of {title, payload}"),
    ({"welcome": [{"fail": {"status": 500, "times": 0}}], "fallback": [{"say": "?"}]},
     "script: welcome step 1: fail times must be a positive whole number"),
])
def test_script_errors_name_the_place(data, message):
    with pytest.raises(ScriptError) as info:
        parse_script(data)
    assert str(info.value) == message


def test_script_files(tmp_path: Path):
    with pytest.raises(ScriptError, match=r"missing.yaml: No such file or directory"):
        load_script(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("welcome: [unclosed")
    with pytest.raises(ScriptError, match=r"^.*bad.yaml: not valid YAML: "):
        load_script(bad)
    good = tmp_path / "good.yaml"
    good.write_text('name: Tiny\nwelcome: [{say: Hi}]\nfallback: [{say: "What?"}]\n')
    assert load_script(good).name == "Tiny"
