"""RFC 4733 telephone-events (keypad keys sent as RTP packets): each key reported once, on its end.

One key press is a run of packets sharing one RTP timestamp (the event's start); the last has the end
bit and is sent three times, and senders (sipp's captures among them) repeat even its sequence number
(specs/telephony.md §8.1). So a key is reported on the first end packet and its repeats are recognised
by (SSRC, timestamp, event), never by sequence number. Reporting on the end rather than the start costs the
press's length (~100-200 ms) but never reports a key whose start was lost twice or not at all.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

#: RFC 4733 §3.2 event codes 0-15; 16 (flash) and above are not keys
KEYS = "0123456789*#ABCD"
#: the (timestamp, event) pairs remembered: a late repeat of an older key is still recognised
REMEMBERED_EVENTS = 8

_EVENT = struct.Struct("!BBH")


class EventParseError(ValueError):
    """The payload is too short to be a telephone-event."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int  # -dBm0, 0 is the loudest
    duration: int  # in timestamp units; not trusted for timing (sipp's captures double it)


def parse_event(payload: bytes) -> TelephoneEvent:
    """The first event of a telephone-event payload (RFC 4733 §2.3); raises EventParseError."""
    if len(payload) < _EVENT.size:
        raise EventParseError(f"telephone-event payload of {len(payload)} bytes, needs {_EVENT.size}")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


class KeyEvents:
    """Turns a call's telephone-event packets into keys, each reported once."""

    def __init__(self) -> None:
        self._reported: deque[tuple[int, int, int]] = deque(maxlen=REMEMBERED_EVENTS)

    def key(self, ssrc: int, timestamp: int, payload: bytes) -> str | None:
        """The key this packet ends, or None (not an end, a repeat, or not a key: flash, tones);
        raises EventParseError on a short payload."""
        event = parse_event(payload)
        press = (ssrc, timestamp, event.event)
        if not event.end or event.event >= len(KEYS) or press in self._reported:
            return None
        self._reported.append(press)
        return KEYS[event.event]
