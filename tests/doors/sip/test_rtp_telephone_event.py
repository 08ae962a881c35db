"""RFC 4733 keys: each press reported once, on its end, whatever the repeats."""

from __future__ import annotations

import struct

import pytest

from adapter.doors.sip.telephone_event import KEYS, EventParseError, KeyEvents, parse_event


def event(code: int, end: bool = False, duration: int = 160) -> bytes:
    return struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)


def press(keys: KeyEvents, code: int, timestamp: int, ssrc: int = 1) -> list[str | None]:
    """What a sender puts on the wire for one press: updates, then the end packet three times."""
    packets = [event(code, duration=d) for d in (0, 160, 320)] + [event(code, end=True, duration=480)] * 3
    return [keys.key(ssrc, timestamp, p) for p in packets]


def test_a_press_is_reported_once_on_its_first_end_packet() -> None:
    keys = KeyEvents()
    assert press(keys, 5, timestamp=1000) == [None, None, None, "5", None, None]
    assert press(keys, 5, timestamp=2000) == [None, None, None, "5", None, None]  # the same key again


def test_a_late_repeat_of_an_older_press_is_not_a_new_key() -> None:
    keys = KeyEvents()
    press(keys, 1, timestamp=1000)
    press(keys, 2, timestamp=2000)
    assert keys.key(1, 1000, event(1, end=True)) is None
    assert keys.key(2, 1000, event(1, end=True)) == "1"  # another stream's press


@pytest.mark.parametrize("code, key", list(enumerate(KEYS)))
def test_events_0_to_15_are_the_sixteen_keys(code: int, key: str) -> None:
    assert KeyEvents().key(1, 0, event(code, end=True)) == key


@pytest.mark.parametrize("code", [16, 32, 255])  # flash, modem and fax tones, unassigned
def test_other_events_are_ignored(code: int) -> None:
    assert KeyEvents().key(1, 0, event(code, end=True)) is None


def test_fields_and_short_payloads() -> None:
    parsed = parse_event(bytes([11, 0x80 | 0x40 | 7]) + struct.pack("!H", 1234))
    assert (parsed.event, parsed.end, parsed.volume, parsed.duration) == (11, True, 7, 1234)  # R bit ignored
    with pytest.raises(EventParseError):
        parse_event(b"\x01\x80\x00")
