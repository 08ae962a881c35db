"""The service with its SIP door on 127.0.0.1 (port 0), the stub Kore.ai bot, and real SIP peers:
a raw UDP socket for hand-made messages, sipp scenarios, and a raw RTP socket."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from aiohttp.test_utils import TestServer
from simulated_bot import SimulatedBot

from adapter.calls.clock import Clock
from adapter.doors.sip.listener import USER_AGENT, read_message
from adapter.doors.sip.message import Request, Response, parse
from adapter.doors.sip.rtp import RtpPacket, RtpSession, parse_rtp
from adapter.doors.sip.uas import UserAgent
from adapter.server import create_app
from tests.doors.conftest import door_settings, stub_kore, stub_settings

M = TypeVar("M", Request, Response)
SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_PCAPS = Path("/usr/share/sip-tester")


@dataclass
class SipService:
    agent: UserAgent
    requests: list[dict[str, Any]]  # what the stub bot received

    @property
    def port(self) -> int:
        return self.agent.address[1]


@asynccontextmanager
async def sip_service(allow: str = "127.0.0.0/8", rtp_ports: str = "21000-21199", bot: SimulatedBot | None = None,
                      clock: Clock | None = None, **env: str) -> AsyncIterator[SipService]:
    """The whole service with a SIP door on 127.0.0.1, answering through `bot` (default: the stub bot),
    on `clock` (default: the system's)."""
    requests: list[dict[str, Any]] = []
    env = {"KORE_VOICE_SIP_PORT": "0", "KORE_VOICE_SIP_HOST": "127.0.0.1", "KORE_VOICE_SIP_ALLOW": allow,
           "KORE_VOICE_RTP_PORTS": rtp_ports, **env}
    async with contextlib.AsyncExitStack() as stack:
        if bot is None:
            settings = stub_settings(await stack.enter_async_context(stub_kore(requests)), **env)
        else:
            settings = door_settings(**bot.env(), **env)
        server = await stack.enter_async_context(TestServer(create_app(settings, clock=clock)))
        yield SipService(server.app[USER_AGENT], requests)


class Answers:
    """Reading what the door sends a peer, whatever carries it: responses to the peer's requests, and
    requests of the door's own (BYE, REFER), each taken in order of its kind."""

    unread: list[Request | Response]

    async def message(self, timeout: float) -> bytes:
        raise NotImplementedError

    async def _next(self, kind: type[M], timeout: float) -> M:
        while True:
            for message in self.unread:
                if isinstance(message, kind):
                    self.unread.remove(message)
                    return message
            self.unread.append(parse(await self.message(timeout)))

    async def response(self, timeout: float = 5.0) -> Response:
        return await self._next(Response, timeout)

    async def final(self, timeout: float = 10.0) -> Response:
        while (answer := await self.response(timeout)).status < 200:
            pass
        return answer

    async def request(self, timeout: float = 20.0) -> Request:
        return await self._next(Request, timeout)


class UdpPeer(asyncio.DatagramProtocol, Answers):
    """A raw SIP peer on a UDP socket: send bytes, read what comes back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.unread = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's selector transport is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    async def message(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self.received.get(), timeout)


@dataclass
class TcpPeer(Answers):
    """A raw SIP peer on one TCP connection (RFC 3261 §18: messages framed by Content-Length)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    unread: list[Request | Response] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.writer.get_extra_info("sockname")[1]

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def message(self, timeout: float) -> bytes:
        message = await asyncio.wait_for(read_message(self.reader), timeout)
        assert message is not None, "the door closed the connection"
        return message


@asynccontextmanager
async def tcp_peer(port: int) -> AsyncIterator[TcpPeer]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield TcpPeer(reader, writer)
    finally:
        writer.close()


@asynccontextmanager
async def udp_peer() -> AsyncIterator[UdpPeer]:
    transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        UdpPeer, local_addr=("127.0.0.1", 0))
    try:
        yield peer
    finally:
        transport.close()


class RtpPeer(asyncio.DatagramProtocol):
    """The far end of a call's RTP: a UDP socket on loopback that sends what a test says and keeps what
    it gets."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[RtpPacket, tuple[str, int]]] = asyncio.Queue()

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> RtpPeer:
        _, peer = await asyncio.get_running_loop().create_datagram_endpoint(cls, local_addr=(host, 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.address = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.put_nowait((parse_rtp(data), addr[:2]))

    def send(self, to: RtpSession, data: bytes) -> None:
        self.transport.sendto(data, ("127.0.0.1", to.port))  # type: ignore[attr-defined]

    async def packet(self) -> RtpPacket:
        packet, _ = await asyncio.wait_for(self.got.get(), 5)
        return packet


def request(method: str, peer_port: int, body: str = "", call_id: str = "c1", branch: str = "z9hG4bK-1",
            to_tag: str = "", cseq: int = 1, extra: str = "", content_type: str = "application/sdp",
            transport: str = "UDP", uri: str = "sip:+15559870000@127.0.0.1") -> bytes:
    """A SIP request from the raw peer on `peer_port`."""
    to = "<sip:bot@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:{peer_port};branch={branch}\r\n"
            f"From: <sip:+15551230000@127.0.0.1>;tag=peer\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:caller@127.0.0.1:{peer_port}>\r\nMax-Forwards: 70\r\n{extra}")
    if body:
        head += f"Content-Type: {content_type}\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()


def sdp_offer(formats: str = "0 101", port: int = 40000) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n")


async def sipp(port: int, *args: str, cwd: Path | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run sipp against the door (off the event loop); exit 0 = every call passed. `stdout` holds sipp's
    message trace (what it sent and received), `stderr` its errors."""
    cmd = ["sipp", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", "0", "-m", "1", "-nostdin", "-timeout",
           f"{timeout:g}s", "-timeout_error", "-trace_err", "-trace_msg", *args]
    process = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    folder = cwd or Path.cwd()
    errors = b"".join(path.read_bytes() for path in folder.glob("*_errors.log"))
    messages = b"".join(path.read_bytes() for path in folder.glob("*_messages.log"))
    return subprocess.CompletedProcess(cmd, process.returncode or 0, messages, err + errors)
