"""SIP door capacity: N simultaneous SIP calls with real speech against `kore-voice serve`, and Twilio
Media Streams calls in the same run for comparison, through bench/capacity.py's call loop and report.

    .venv/bin/python bench/sip.py [--calls 1,5,10,20] [--turns 3] [--door sip,twilio] [capacity.py's options]

Each SIP caller is a Python user agent on loopback UDP, as a PBX trunk would call: INVITE with a PCMU +
telephone-event offer, ACK to the 200, then the caller's line as 20 ms μ-law RTP packets for the whole
call (speech, else silence), and BYE at the end. It keeps every RTP packet the door sends with its arrival
time; RTP echoes nothing, so a prompt has played once the door has sent nothing for QUIET_S (as for
AudioSocket). With `--door sip,twilio` (the default) each level's calls alternate between the doors, all
simultaneous, and the report gives each door's reply times apart: end of speech (the caller's last speech
packet sent) to the reply's first packet, p50/p95; outbound RTP gap max (goal: none over 40 ms); calls per
core; the service's memory per call. The bot's "right" count covers Twilio calls only: a SIP call's Kore
user id is random and not seen by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, Self, cast

import aiohttp
import capacity
from door_callers import CALLED, CALLER, DOORS, AudioSocket, Door

from adapter.doors.pacer import ULAW_8K
from adapter.doors.sip import sdp
from adapter.doors.sip.message import Request, Response, new_branch, new_tag, parse
from adapter.doors.sip.rtp import RtpPacket, build_rtp, parse_rtp
from adapter.testing.line_peer import Arrival, LinePeer

ANSWER_S = 30.0  # the door answers once the bot's welcome is ready


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes], None]) -> None:
        self._received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._received(data)


class SipCaller(LinePeer):
    """One call from a trunk: SIP over UDP to the door, its caller's line and the door's audio over RTP."""

    AUDIO = "audio"

    def __init__(self, port: int, number: int) -> None:
        super().__init__(ULAW_8K)
        self.port, self.number = port, number
        self.closed = False
        self._responses: asyncio.Queue[Response] = asyncio.Queue()
        self._sip: asyncio.DatagramTransport | None = None
        self._rtp: asyncio.DatagramTransport | None = None
        self._media: tuple[str, int] = ("127.0.0.1", 0)
        self._tag, self._call_id = new_tag(), f"bench-{number}-{new_tag()}"
        self._remote_tag = ""
        self._ssrc, self._seq, self._stamp = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._sip = cast(asyncio.DatagramTransport, (await loop.create_datagram_endpoint(
            lambda: Datagrams(self._sip_received), local_addr=("127.0.0.1", 0)))[0])
        self._rtp = cast(asyncio.DatagramTransport, (await loop.create_datagram_endpoint(
            lambda: Datagrams(self._rtp_received), local_addr=("127.0.0.1", 0)))[0])
        rtp_port = self._rtp.get_extra_info("sockname")[1]
        offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                 "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n")
        self._send("INVITE", 1, [("Content-Type", "application/sdp")], offer.encode())
        async with asyncio.timeout(ANSWER_S):
            while (ok := await self._responses.get()).status < 200:
                pass
        assert ok.status == 200, f"INVITE answered {ok.status}"
        self._remote_tag = (ok.get("To") or "").split("tag=")[1]
        answer = sdp.parse_offer(ok.body)
        self._media = (answer.address, answer.port)
        self._send("ACK", 1)
        self.talk()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        for transport in (self._sip, self._rtp):
            if transport is not None:
                transport.close()

    # --- SIP ----------------------------------------------------------------------------------------

    def _send(self, method: str, cseq: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        assert self._sip is not None
        local = self._sip.get_extra_info("sockname")[1]
        to = f"<sip:{CALLED}@127.0.0.1>" + (f";tag={self._remote_tag}" if self._remote_tag else "")
        request = Request(method=method, uri=f"sip:{CALLED}@127.0.0.1:{self.port}", headers=[
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{local};branch={new_branch()};rport"), ("Max-Forwards", "70"),
            ("From", f"<sip:{CALLER}@127.0.0.1>;tag={self._tag}"), ("To", to), ("Call-ID", self._call_id),
            ("CSeq", f"{cseq} {method}"), ("Contact", f"<sip:caller@127.0.0.1:{local}>"), *(headers or [])],
            body=body)
        self._sip.sendto(request.encode(), ("127.0.0.1", self.port))

    def _sip_received(self, data: bytes) -> None:
        message = parse(data)
        if isinstance(message, Response):
            self._responses.put_nowait(message)
            return
        assert self._sip is not None
        ok = Response(headers=[(n, v) for n, v in message.headers if n.lower() in ("via", "from", "to", "call-id",
                                                                                   "cseq")],
                      status=200, reason="OK")
        self._sip.sendto(ok.encode(), ("127.0.0.1", self.port))
        if message.method == "BYE":
            self._gone()

    async def hang_up(self) -> None:
        self._stop_talking()
        self._send("BYE", 2)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._responses.get()
        self._gone()

    def _gone(self) -> None:
        self.closed = True
        self._stop_talking()
        self._notify()

    # --- RTP ----------------------------------------------------------------------------------------

    async def _send_audio(self, frame: bytes, number: int) -> None:
        if self._rtp is None or self.closed:
            raise ConnectionError("the call is over")
        self._seq, self._stamp = (self._seq + 1) % 65536, (self._stamp + 160) % 2**32
        self._rtp.sendto(build_rtp(RtpPacket(0, self._seq, self._stamp, self._ssrc, frame, number == 1)),
                         self._media)

    def _rtp_received(self, data: bytes) -> None:
        packet = parse_rtp(data)
        if packet.payload_type == 0:
            self.timeline.append(Arrival(self.AUDIO, time.monotonic(), packet.payload))
            self._notify()

    def _echo(self, marker: str | int | None) -> bool:
        return False  # RTP echoes nothing


class Sip(Door):
    """A trunk calling the SIP door on a free UDP port of loopback; the door's RTP on KORE_VOICE_RTP_PORTS."""

    name = "sip"

    def __init__(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def env(self) -> dict[str, str]:
        return {"KORE_VOICE_SIP_PORT": str(self.port), "KORE_VOICE_SIP_HOST": "127.0.0.1"}

    def user(self, number: int) -> str:
        return f"sip call {number} (random Kore user id)"  # matches no user id: not counted as right

    def connect(self, http: aiohttp.ClientSession, base: str, number: int) -> SipCaller:
        return SipCaller(self.port, number)

    played = AudioSocket.played  # a PBX echoes nothing either: played once the door has gone quiet

    async def hang_up(self, http: aiohttp.ClientSession, base: str, peer: Any, number: int) -> None:
        await peer.hang_up()


def main() -> None:
    DOORS[Sip.name] = Sip
    if not any(arg == "--door" or arg.startswith("--door=") for arg in sys.argv):
        sys.argv += ["--door", "sip,twilio"]
    capacity.__doc__ = __doc__
    capacity.main()


if __name__ == "__main__":
    main()
