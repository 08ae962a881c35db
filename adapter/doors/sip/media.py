"""The seam between the SIP door and its RTP sessions (rtp.py): what a call needs of its media.

A session is opened on a free port of KORE_VOICE_RTP_PORTS for the codec and telephone-event type the
SDP agreed; it hands the call decoded caller audio (16-bit PCM, 8 kHz), each RFC 4733 key once, and
a report when the peer has gone quiet for too long; it sends our 20 ms G.711 payloads, prompts and
the silence between them alike (an RTP stream that stops looks like a dead call to a PBX or a NAT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MediaHandlers:
    audio: Callable[[bytes], None]  # 20 ms of the caller's audio as 16-bit PCM at 8 kHz
    key: Callable[[str], None]  # a telephone-event key, once per press
    inactive: Callable[[], None]  # no RTP from the peer for the inactivity timeout


class MediaSession(Protocol):
    """What a call uses of its RTP session (rtp.RtpSession)."""

    @property
    def port(self) -> int: ...

    def send(self, payload: bytes, speech: bool = True) -> None: ...

    def retarget(self, address: str, port: int) -> None: ...

    def close(self) -> None: ...
