"""The custom call-control payload: what is accepted, and one-line reasons for what is not."""

from __future__ import annotations

import pytest

from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.replies import CallAction
from adapter.kore.voice_directive import read_directive


@pytest.mark.parametrize("voice,expected", [
    ({"action": "hangup"}, (CallAction("hangup"), None)),
    ({"action": "transfer", "to": " sip:agent@example.com "}, (CallAction("transfer", "sip:agent@example.com"), None)),
    ({"input": {"digits": {"min": 4, "max": 12, "finishOnKey": "#"}}},
     (None, ExpectedInput(True, DigitSpec(min=4, max=12, finish_on_key="#")))),
    ({"input": {"speech": False, "digits": True}}, (None, ExpectedInput(False, DigitSpec()))),
    ({"input": {}}, (None, ExpectedInput(True, None))),
])
def test_valid_directives(voice, expected):
    assert read_directive(voice) == expected


@pytest.mark.parametrize("voice,message", [
    ({"action": "dance"}, 'voice action must be "hangup" or "transfer", not \'dance\''),
    ({"action": "transfer"}, 'voice action "transfer" needs a "to" string'),
    ({"target": "x"}, "unknown voice keys: target"),
    ({"input": "digits"}, "voice input must be an object"),
    ({"input": {"speech": "no"}}, "voice input speech must be true or false"),
    ({"input": {"speech": False}}, "voice input accepts neither speech nor digits"),
    ({"input": {"digits": {"num": 0}}}, "voice input digits num must be a whole number from 1 to 64"),
    ({"input": {"digits": {"num": 4, "max": 5}}}, "voice input digits: give num, or min/max, not both"),
    ({"input": {"digits": {"min": 5, "max": 4}}}, "voice input digits min is above max"),
    ({"input": {"digits": {"finishOnKey": "##"}}}, "voice input digits finishOnKey must be one key of 0-9, * or #"),
    ({"input": {"digits": []}}, "voice input digits must be an object or true"),
])
def test_invalid_directives(voice, message):
    with pytest.raises(ValueError) as info:
        read_directive(voice)
    assert str(info.value) == message
