"""The doors bench/capacity.py calls through, one plug each: how a caller reaches the service by that door
(as its phone system would, through the peers of adapter/testing/), what its line carries, and how it
knows a prompt has played and hangs up. A new door joins with one more `Door` in DOORS.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

from adapter.doors.audiosocket.door import DOOR as AUDIOSOCKET_DOOR
from adapter.doors.twilio.call_sid import user_id
from adapter.doors.vonage.ncco import PREFIX as VONAGE_PREFIX
from adapter.testing.audiosocket_peer import AudioSocketPeer
from adapter.testing.line_peer import LinePeer
from adapter.testing.sip_peer import SipPeer
from adapter.testing.twilio_media import MediaPeer
from adapter.testing.vonage_peer import VonageSocket, answer_query, query_payload, signed_headers, status_event

CALLER, CALLED = "+15551230000", "+15559870000"
#: sox options for raw audio as each line carries it
LINE_ULAW_8K = ("-r", "8000", "-e", "mu-law")
LINE_SLIN_8K = ("-r", "8000", "-e", "signed", "-b", "16", "-L")
LINE_SLIN_16K = ("-r", "16000", "-e", "signed", "-b", "16", "-L")
#: this long without a frame from a door whose peer echoes nothing, its prompt has played (its lead is 0.1 s)
QUIET_S = 0.4


class Door:
    """One door as the bench's callers use it."""

    name = ""
    sox: tuple[str, ...] = LINE_ULAW_8K  # the caller's line, for `sox ... -t raw`
    bytes_per_s = 8000

    def env(self) -> dict[str, str]:
        """The service's settings this door needs."""
        return {}

    def user(self, number: int) -> str:
        """How the bot's user id for call `number` starts (to match what the bot heard)."""
        raise NotImplementedError

    def connect(self, http: aiohttp.ClientSession, base: str, number: int) -> AbstractAsyncContextManager[LinePeer]:
        """Call `number` set up as the phone system sets it up; leaving it closes the caller's side."""
        raise NotImplementedError

    async def played(self, peer: Any, turn: int, after: float) -> None:
        """Until the prompt before `turn` (1: the welcome) has played; `after`: when the caller last spoke."""
        await peer.until(lambda p: len(p.echoed) >= turn, 60)

    async def hang_up(self, http: aiohttp.ClientSession, base: str, peer: Any, number: int) -> None:
        raise NotImplementedError


class Twilio(Door):
    """A signed `/twilio/voice`, then the Media Stream its TwiML names (the service's default mode)."""

    name = "twilio"
    AUTH_TOKEN = "bench-twilio-auth-token"

    def env(self) -> dict[str, str]:
        return {"KORE_VOICE_TWILIO_MODE": "media-streams", "TWILIO_AUTH_TOKEN": self.AUTH_TOKEN}

    def user(self, number: int) -> str:
        return user_id(self.sid(number))

    def sid(self, number: int) -> str:
        return f"CA{number:032x}"

    @asynccontextmanager
    async def connect(self, http: aiohttp.ClientSession, base: str, number: int) -> AsyncIterator[LinePeer]:
        sid = self.sid(number)
        params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": CALLER, "To": CALLED,
                  "CallStatus": "in-progress", "Direction": "inbound"}
        signature = RequestValidator(self.AUTH_TOKEN).compute_signature(f"{base}/twilio/voice", params)
        async with http.post(f"{base}/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}) as resp:
            stream = ET.fromstring(await resp.text()).find("./Connect/Stream")
        assert stream is not None
        parameters = {str(p.get("name")): str(p.get("value")) for p in stream.iter("Parameter")}
        async with MediaPeer(http, str(stream.get("url")), sid, parameters) as peer:
            yield peer

    async def hang_up(self, http: aiohttp.ClientSession, base: str, peer: Any, number: int) -> None:
        await peer.stop()


class AudioSocket(Door):
    """Asterisk's AudioSocket over TCP to the listener on a free port; Asterisk echoes nothing, so a prompt
    has played once the door has sent nothing for QUIET_S."""

    name = "audiosocket"
    sox = LINE_SLIN_8K
    bytes_per_s = 16000

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def env(self) -> dict[str, str]:
        return {"KORE_VOICE_AUDIOSOCKET_PORT": str(self.port)}

    def user(self, number: int) -> str:
        return f"{AUDIOSOCKET_DOOR}-{uuid.UUID(int=number).hex}-"

    def connect(self, http: aiohttp.ClientSession, base: str, number: int) -> AbstractAsyncContextManager[LinePeer]:
        return AudioSocketPeer("127.0.0.1", self.port, uuid.UUID(int=number))

    async def played(self, peer: Any, turn: int, after: float) -> None:
        async with asyncio.timeout(60):
            while not (peer.audio_since(after) and time.monotonic() - peer.audio()[-1].at > QUIET_S):
                await asyncio.sleep(0.05)

    async def hang_up(self, http: aiohttp.ClientSession, base: str, peer: Any, number: int) -> None:
        await peer.hang_up()


class Vonage(Door):
    """A signed `/vonage/answer`, then the socket its NCCO names (16 kHz L16); a signed `completed` event
    ends the call."""

    name = "vonage"
    sox = LINE_SLIN_16K
    bytes_per_s = 32000
    SECRET = "bench-vonage-signature-secret-0123456789"

    def env(self) -> dict[str, str]:
        return {"VONAGE_SIGNATURE_SECRET": self.SECRET}

    def user(self, number: int) -> str:
        return VONAGE_PREFIX + self.call_uuid(number)

    def call_uuid(self, number: int) -> str:
        return str(uuid.UUID(int=number))

    @asynccontextmanager
    async def connect(self, http: aiohttp.ClientSession, base: str, number: int) -> AsyncIterator[LinePeer]:
        query = answer_query(self.call_uuid(number), CALLER.lstrip("+"), CALLED.lstrip("+"))
        async with http.get(f"{base}/vonage/answer", params=query,
                            headers=signed_headers(self.SECRET, query_payload(query))) as resp:
            [connect] = await resp.json()
        async with VonageSocket(http, connect["endpoint"][0]) as peer:
            peer.talk()
            yield peer

    async def hang_up(self, http: aiohttp.ClientSession, base: str, peer: Any, number: int) -> None:
        body = json.dumps(status_event(self.call_uuid(number), "completed")).encode()
        async with http.post(f"{base}/vonage/event", data=body, headers=signed_headers(self.SECRET, body)):
            pass


class Sip(Door):
    """A trunk calling the SIP door on a free UDP port of loopback (the door's RTP on KORE_VOICE_RTP_PORTS).
    The door's RTP never stops, so a prompt has played once its talk-spurt has ended (SipPeer)."""

    name = "sip"

    def __init__(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def env(self) -> dict[str, str]:
        return {"KORE_VOICE_SIP_PORT": str(self.port), "KORE_VOICE_SIP_HOST": "127.0.0.1"}

    def user(self, number: int) -> str:
        return f"ani:{self.caller(number)}"  # the door's Kore user ids are random: the bot's heard by number

    @staticmethod
    def caller(number: int) -> str:
        """Each call's own caller number (From), which reaches the bot as customData.ani."""
        return f"+1555{number:07d}"

    def connect(self, http: aiohttp.ClientSession, base: str, number: int) -> AbstractAsyncContextManager[LinePeer]:
        return SipPeer(self.port, self.caller(number), CALLED, call_id=f"bench-{number}-{uuid.uuid4().hex[:8]}")

    async def played(self, peer: Any, turn: int, after: float) -> None:
        await peer.until(lambda p: p.audio_since(after) and not p.talking, 60)

    async def hang_up(self, http: aiohttp.ClientSession, base: str, peer: Any, number: int) -> None:
        await peer.hang_up()


DOORS: dict[str, type[Door]] = {door.name: door for door in (Twilio, AudioSocket, Vonage, Sip)}
