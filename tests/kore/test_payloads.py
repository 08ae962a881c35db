"""Request bodies, exactly: v2 events and text, v1 seed shape, metadata for speech and keypad input."""

from __future__ import annotations

import pytest

from adapter.calls.info import CallInfo, InputMeta
from adapter.kore.payloads import PayloadBuilder

CALL = CallInfo("call-7f3c9d", caller="+14155550100", called="+18005550199", door="twilio")
EMPTY_USER = {"firstName": "", "lastName": "", "email": ""}


def test_v2_welcome_is_on_connect_with_a_new_session():
    assert PayloadBuilder("v2", "st-1").welcome(CALL, "Hi") == {
        "session": {"new": True},
        "message": {"type": "event", "val": "ON_CONNECT"},
        "from": {"id": "call-7f3c9d", "userInfo": EMPTY_USER},
        "to": {"id": "st-1"},
        "metaTags": {"sessionLevelTags": [{"name": "ani", "value": "+14155550100"},
                                          {"name": "dnis", "value": "+18005550199"}]},
        "customData": {"ani": "+14155550100", "dnis": "+18005550199", "door": "twilio"},
    }


def test_v2_keypad_text():
    body = PayloadBuilder("v2", "st-1").text(CallInfo("call-1"), "4532", InputMeta("dtmf", keys="4532#"))
    assert body == {
        "session": {"new": False},
        "message": {"type": "text", "val": "4532"},
        "from": {"id": "call-1", "userInfo": EMPTY_USER},
        "to": {"id": "st-1"},
        "metaTags": {"messageLevelTags": [{"name": "inputMode", "value": "dtmf"}]},
        "customData": {"inputMode": "dtmf", "dtmf": "4532#"},
    }


def test_v2_closure():
    assert PayloadBuilder("v2", "st-1").closure(CALL) == {
        "session": {"new": False}, "message": {"type": "event", "val": "SESSION_CLOSURE"},
        "from": {"id": "call-7f3c9d"}, "to": {"id": "st-1"}}


def test_v1_follows_the_seed():
    builder = PayloadBuilder("v1", "st-1")
    assert builder.welcome(CallInfo("call-1"), "Hi") == {
        "session": {"new": True},
        "message": {"text": "Hi", "attachments": []},
        "from": {"id": "call-1", "userInfo": EMPTY_USER},
        "to": {"id": "st-1", "groupInfo": {"id": "", "name": ""}},
        "customData": {},
    }
    body = builder.text(CALL, "check my balance", InputMeta("speech", confidence=0.876))
    assert body["session"] == {"new": False}
    assert body["message"] == {"text": "check my balance", "attachments": []}
    assert body["messageLevelTags"] == [{"name": "inputMode", "value": "speech"},
                                        {"name": "asrConfidence", "value": "0.88"}]
    assert body["customData"] == {"ani": "+14155550100", "dnis": "+18005550199", "door": "twilio",
                                  "inputMode": "speech", "asrConfidence": 0.876}
    assert builder.closure(CALL) is None


def test_user_ids_are_per_call_and_never_the_caller_number():
    a, b = CallInfo.new("rest", caller="+14155550100"), CallInfo.new("rest", caller="+14155550100")
    assert a.user_id != b.user_id and a.user_id.startswith("call-") and len(a.user_id) == 37
    with pytest.raises(ValueError, match="must not be the bare caller number"):
        CallInfo("+14155550100", caller="+14155550100")
    with pytest.raises(ValueError, match="must not be empty"):
        CallInfo(" ")
