"""A SIP trunk's side of one call to the SIP door, over real UDP: for the benchmark and trying the door
without a PBX.

Calls as a PBX trunk does (specs/telephony.md): INVITE with a PCMU + telephone-event offer, ACK to the
200, then the caller's line as 20 ms μ-law RTP packets for the whole call (what the caller says, else
silence), 200 to the door's requests, and BYE to hang up. The door's RTP runs all call long too, its
prompts and silence between them; RTP echoes nothing, so the peer tells the door's talk-spurts apart
itself: one starts at a packet with the marker bit and ends after PAUSE_S of pure silence (a prompt's
own pauses, between sentences, are shorter). Packets of a talk-spurt are kept as `AUDIO` arrivals,
the silence between them as `SILENCE`, each with its arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Self, cast

from adapter.doors.pacer import FRAME_S, ULAW_8K
from adapter.doors.sip import sdp
from adapter.doors.sip.message import Request, Response, new_branch, new_tag, parse
from adapter.doors.sip.rtp import PAYLOAD_TYPES, RtpPacket, build_rtp, parse_rtp
from adapter.testing.line_peer import Arrival, LinePeer

#: the door answers once the bot's welcome is ready
ANSWER_S = 30.0
#: this much pure silence from the door ends its talk-spurt
PAUSE_S = 0.4
PCMU = PAYLOAD_TYPES["PCMU"]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes], None]) -> None:
        self._received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._received(data)


class SipPeer(LinePeer):
    """One call from a trunk on loopback: `async with SipPeer(port, caller, called)` calls the door on
    `port` and starts the caller's line once answered; `hang_up()` sends BYE. `talking`: the door is in
    a talk-spurt."""

    AUDIO = "audio"
    SILENCE = "silence"

    def __init__(self, port: int, caller: str, called: str, call_id: str | None = None) -> None:
        super().__init__(ULAW_8K)
        self.port, self.caller, self.called = port, caller, called
        self.closed = False
        self.talking = False
        self._quiet_frames = 0  # pure silence packets in a row from the door
        self._silence = ULAW_8K.silence * ULAW_8K.frame_bytes
        self._responses: asyncio.Queue[Response] = asyncio.Queue()
        self._sip: asyncio.DatagramTransport | None = None
        self._rtp: asyncio.DatagramTransport | None = None
        self._media: tuple[str, int] = ("127.0.0.1", 0)
        self._tag, self._call_id = new_tag(), call_id or f"peer-{new_tag()}"
        self._remote_tag = ""
        self._ssrc, self._seq, self._stamp = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)

    async def __aenter__(self) -> Self:
        self._sip = await self._endpoint(self._sip_received)
        self._rtp = await self._endpoint(self._rtp_received)
        rtp_port = self._rtp.get_extra_info("sockname")[1]
        offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 f"m=audio {rtp_port} RTP/AVP {PCMU} 101\r\na=rtpmap:{PCMU} PCMU/8000\r\n"
                 "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n")
        self._send("INVITE", 1, [("Content-Type", "application/sdp")], offer.encode())
        async with asyncio.timeout(ANSWER_S):
            while (ok := await self._responses.get()).status < 200:
                pass
        if ok.status != 200:
            raise ConnectionError(f"INVITE answered {ok.status} {ok.reason}")
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

    @staticmethod
    async def _endpoint(received: Callable[[bytes], None]) -> asyncio.DatagramTransport:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Datagrams(received), local_addr=("127.0.0.1", 0))
        return cast(asyncio.DatagramTransport, transport)  # 3.11's selector transport is not a subclass

    # --- SIP ----------------------------------------------------------------------------------------

    def _send(self, method: str, cseq: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        assert self._sip is not None
        local = self._sip.get_extra_info("sockname")[1]
        to = f"<sip:{self.called}@127.0.0.1>" + (f";tag={self._remote_tag}" if self._remote_tag else "")
        request = Request(method=method, uri=f"sip:{self.called}@127.0.0.1:{self.port}", headers=[
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{local};branch={new_branch()};rport"), ("Max-Forwards", "70"),
            ("From", f"<sip:{self.caller}@127.0.0.1>;tag={self._tag}"), ("To", to), ("Call-ID", self._call_id),
            ("CSeq", f"{cseq} {method}"), ("Contact", f"<sip:caller@127.0.0.1:{local}>"), *(headers or [])],
            body=body)
        self._sip.sendto(request.encode(), ("127.0.0.1", self.port))

    def _sip_received(self, data: bytes) -> None:
        message = parse(data)
        if isinstance(message, Response):
            self._responses.put_nowait(message)
            return
        assert self._sip is not None
        echoed = ("via", "from", "to", "call-id", "cseq")
        ok = Response(headers=[(n, v) for n, v in message.headers if n.lower() in echoed], status=200, reason="OK")
        self._sip.sendto(ok.encode(), ("127.0.0.1", self.port))
        if message.method == "BYE":
            self._gone()

    async def hang_up(self) -> None:
        """BYE, and the call is over once answered (or after 5 s without an answer)."""
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
        self._seq, self._stamp = (self._seq + 1) % 65536, (self._stamp + len(frame)) % 2**32
        self._rtp.sendto(build_rtp(RtpPacket(PCMU, self._seq, self._stamp, self._ssrc, frame, number == 1)),
                         self._media)

    def _rtp_received(self, data: bytes) -> None:
        packet = parse_rtp(data)
        if packet.payload_type != PCMU:
            return
        if packet.marker:
            self.talking, self._quiet_frames = True, 0
        elif self.talking:
            self._quiet_frames = self._quiet_frames + 1 if packet.payload == self._silence else 0
            self.talking = self._quiet_frames * FRAME_S < PAUSE_S
        kind = self.AUDIO if self.talking else self.SILENCE
        self.timeline.append(Arrival(kind, time.monotonic(), packet.payload))
        self._notify()

    def _echo(self, marker: str | int | None) -> bool:
        return False  # RTP echoes nothing
