"""The socket's messages, parsed and written without a socket."""

from __future__ import annotations

import json

import pytest
from aiohttp import WSCloseCode

from adapter.doors.vonage.messages import (
    FRAME_BYTES,
    Cleared,
    Connected,
    Dtmf,
    Ignored,
    Notified,
    SocketError,
    check_audio,
    clear_message,
    notify_message,
    parse_connected,
    parse_event,
)

CONNECTED = {"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "uuid": "abc-12345678",
             "token": "t"}


def test_connected_keeps_our_headers():
    assert parse_connected(json.dumps(CONNECTED)) == Connected(CONNECTED)


@pytest.mark.parametrize("message,code", [
    ("not json", WSCloseCode.UNSUPPORTED_DATA),
    ("[1, 2]", WSCloseCode.UNSUPPORTED_DATA),
    (json.dumps({**CONNECTED, "event": "websocket:dtmf"}), WSCloseCode.POLICY_VIOLATION),
    (json.dumps({**CONNECTED, "content-type": "audio/l16;rate=8000"}), WSCloseCode.UNSUPPORTED_DATA),
    (json.dumps({**CONNECTED, "content-type": "audio/pcmu"}), WSCloseCode.UNSUPPORTED_DATA),
    (json.dumps({**CONNECTED, "pad": "x" * 9000}), WSCloseCode.MESSAGE_TOO_BIG),
    ("[" * 100 + "]" * 100, WSCloseCode.UNSUPPORTED_DATA),
])
def test_a_bad_first_message_closes_with_its_code(message, code):
    with pytest.raises(SocketError) as caught:
        parse_connected(message)
    assert caught.value.code == code


@pytest.mark.parametrize("message,parsed", [
    ({"event": "websocket:dtmf", "digit": "5", "duration": 260}, Dtmf("5")),
    ({"event": "websocket:dtmf", "digit": "#", "duration": 100}, Dtmf("#")),
    ({"event": "websocket:dtmf", "digit": "55"}, Ignored("dtmf digit", "dtmf digit '55' is not one of 0123456789*#")),
    ({"event": "websocket:dtmf", "digit": 5}, Ignored("dtmf digit", "dtmf digit '5' is not one of 0123456789*#")),
    ({"event": "websocket:notify", "payload": {"prompt": 3}}, Notified(3)),
    ({"event": "websocket:notify", "payload": {"prompt": True}}, Notified(None)),
    ({"event": "websocket:notify", "payload": "x"}, Notified(None)),
    ({"event": "websocket:cleared"}, Cleared()),
    ({"event": "websocket:media:update"},
     Ignored("event 'websocket:media:update'", "an event this service does not use")),
])
def test_events_after_connected(message, parsed):
    assert parse_event(json.dumps(message)) == parsed


def test_a_second_connected_or_text_that_is_not_json_breaks_the_protocol():
    with pytest.raises(SocketError) as second:
        parse_event(json.dumps(CONNECTED))
    with pytest.raises(SocketError) as garbage:
        parse_event("{oops")
    assert (second.value.code, garbage.value.code) == (WSCloseCode.POLICY_VIOLATION, WSCloseCode.UNSUPPORTED_DATA)


@pytest.mark.parametrize("size", [0, 2, 320, 639, 641, 1280])
def test_audio_frames_are_exactly_20_ms(size):
    assert check_audio(b"\0" * FRAME_BYTES) == b"\0" * FRAME_BYTES
    with pytest.raises(SocketError) as caught:
        check_audio(b"\0" * size)
    assert caught.value.code == WSCloseCode.UNSUPPORTED_DATA


def test_what_we_send():
    assert json.loads(notify_message(7)) == {"action": "notify", "payload": {"prompt": 7}}
    assert json.loads(clear_message()) == {"action": "clear"}
