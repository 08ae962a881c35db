"""Media Streams messages: Twilio's, as specs/telephony.md §2.2 shows them, parsed; ours written as §2.3 says."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.doors.twilio.media_messages import (
    MAX_MEDIA_BYTES,
    Connected,
    Dtmf,
    Ignored,
    Mark,
    Media,
    Message,
    SocketError,
    Start,
    Stop,
    clear_message,
    mark_message,
    mark_name,
    media_message,
    parse_message,
    prompt_of,
)

SID = "MZ" + "1" * 32
CALL = "CA" + "2" * 32
START = {"event": "start", "sequenceNumber": "1",
         "start": {"accountSid": "AC" + "3" * 32, "streamSid": SID, "callSid": CALL, "tracks": ["inbound"],
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                   "customParameters": {"token": "abc.def", "FirstName": "Jane"}},
         "streamSid": SID}


def text(message: dict) -> str:
    return json.dumps(message)


def media(payload: str, sid: str = SID) -> str:
    return text({"event": "media", "sequenceNumber": "4", "streamSid": sid,
                 "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": payload}})


def test_twilios_messages_parse():
    assert parse_message(text({"event": "connected", "protocol": "Call", "version": "1.0.0"}), None) == Connected()
    assert parse_message(text(START), None) == Start(SID, CALL, {"token": "abc.def", "FirstName": "Jane"})
    assert parse_message(media("no+JhoaJjpw="), SID) == Media(base64.b64decode("no+JhoaJjpw="))
    assert parse_message(text({"event": "dtmf", "streamSid": SID, "sequenceNumber": "5",
                               "dtmf": {"track": "inbound_track", "digit": "#"}}), SID) == Dtmf("#")
    assert parse_message(text({"event": "mark", "sequenceNumber": "4", "streamSid": SID,
                               "mark": {"name": "prompt-3"}}), SID) == Mark("prompt-3")
    assert parse_message(text({"event": "stop", "sequenceNumber": "5", "streamSid": SID,
                               "stop": {"accountSid": "AC1", "callSid": CALL}}), SID) == Stop()


def with_start(**changes) -> str:
    return text({**START, "start": {**START["start"], **changes}})


@pytest.mark.parametrize(("message", "stream", "reason", "code"), [
    ("{oops", None, "unreadable message: the body is not valid JSON: Expecting property name enclosed in double "
                    "quotes (line 1 column 2)", 1008),
    ("[1, 2]", None, "a message must be a JSON object", 1008),
    (" " * 20000, None, "a message is at most 16384 characters", 1009),
    ("[" * 100_000 + "]" * 100_000, SID, "a message is at most 16384 characters", 1009),
    ("[" * 8000 + "]" * 8000, SID, "unreadable message: the JSON body nests deeper than 16 levels", 1008),
    ('{"event": "media", "n": ' + "9" * 5000 + "}", SID,
     "unreadable message: the JSON body holds a number too long to read", 1008),
    (text({"sequenceNumber": "1"}), SID, "a message must name its event", 1008),
    (text({"event": ["media"]}), SID, "a message must name its event", 1008),
    (media("AAAA"), None, "media before start", 1008),
    (text({"event": "dtmf", "dtmf": {"digit": "1"}}), None, "dtmf before start", 1008),
    (media("AAAA", "MZother"), SID, "media for another stream ('MZother')", 1008),
    (media("not base64!"), SID, "media.payload is not base64", 1008),
    (media(""), SID, "media.payload must be a non-empty string", 1008),
    (media("A" * (MAX_MEDIA_BYTES * 2)), SID, f"a media payload is at most {MAX_MEDIA_BYTES} bytes", 1009),
    (text({"event": "media", "streamSid": SID, "media": "AAAA"}), SID, "media must be a JSON object", 1008),
    (text({"event": "mark", "streamSid": SID, "mark": {}}), SID, "mark.name must be a non-empty string", 1008),
    (text(START), SID, "a second start on one stream", 1008),
    (text({"event": "connected"}), SID, "connected after start", 1008),
    (with_start(callSid="CA123"), None, "start.callSid is not a Twilio call id", 1008),
    (with_start(streamSid="MZ/../x"), None, "start.streamSid is not a stream id", 1008),
    (with_start(mediaFormat={"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}), None,
     ("the stream's media format is {'encoding': 'audio/x-l16', 'sampleRate': 16000, 'channels': 1}, "
     "not μ-law 8000 Hz mono"), 1008),
    (with_start(customParameters=["token"]), None, "start.customParameters must be a JSON object", 1008),
])
def test_a_message_that_breaks_the_protocol_says_why_and_how_to_close(message, stream, reason, code):
    with pytest.raises(SocketError) as err:
        parse_message(message, stream)
    assert (err.value.reason, err.value.code) == (reason, code)


@pytest.mark.parametrize("stream", [None, SID])
def test_unknown_events_and_keys_are_ignored_not_fatal(stream):
    """Twilio adds events (pipecat ignores them too), and a key we do not know is no reason to hang up."""
    assert parse_message(text({"event": "dance", "streamSid": "MZanything", "dance": [1]}), stream) == Ignored(
        "event 'dance'", "an event this service does not use")
    assert parse_message(text({"event": "x" * 100}), stream).kind == f"event {'x' * 40!r}"  # bounded for the log
    if stream is not None:
        for digit in ("12", "A", 5, None):
            ignored = parse_message(text({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": digit}}), stream)
            assert ignored == Ignored("dtmf digit", f"dtmf digit {str(digit)!r} is not one of 0123456789*#")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4))
EVENTS = st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "clear", "dance", ""])


def message_like(event: str, body: object, sid: str) -> str:
    return json.dumps({"event": event, "streamSid": sid, event: body})


HOSTILE = st.one_of(
    st.integers(1, 8000).map(lambda n: "[" * n + "]" * n),  # deep nesting within the size limit
    st.integers(1, 8000).map(lambda n: '{"event": "media", "n": ' + "9" * n + "}"),  # long integers
)


@given(st.one_of(st.text(max_size=300), JSON_VALUES.map(json.dumps), HOSTILE,
                 st.builds(message_like, EVENTS, JSON_VALUES, st.sampled_from([SID, "MZother", ""]))),
       st.sampled_from([None, SID]))
def test_any_text_is_a_message_or_a_protocol_error(frame: str, stream: str | None):
    try:
        message = parse_message(frame, stream)
    except SocketError as err:
        assert err.code in (1008, 1009) and err.reason and "\n" not in err.reason
        return
    assert isinstance(message, Message)


def test_our_messages_are_the_json_twilio_takes():
    assert json.loads(media_message(SID, b"\xff\x7f")) == {"event": "media", "streamSid": SID,
                                                           "media": {"payload": "/38="}}
    assert json.loads(mark_message(SID, 1)) == {"event": "mark", "streamSid": SID,
                                                         "mark": {"name": "prompt-1"}}
    assert json.loads(clear_message(SID)) == {"event": "clear", "streamSid": SID}
    assert len(json.loads(media_message(SID, bytes(160)))["media"]["payload"]) == 216  # 20 ms of μ-law


def test_marks_name_prompts_and_only_ours_map_back():
    assert mark_name(7) == "prompt-7"
    assert prompt_of("prompt-7") == 7
    for other in ("prompt-", "prompt-x", "prompt-٣", "greeting", "prompt-99999999999"):
        assert prompt_of(other) is None

