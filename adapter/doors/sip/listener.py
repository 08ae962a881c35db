"""The SIP door's sockets, started and stopped with the app: UDP, and TCP on the same port (RFC 3261
§18: a UA must take both). `add_sip(app, open_rtp)` registers them when KORE_VOICE_SIP_PORT is set.

TCP messages are framed by their Content-Length; a head or body over the message cap closes the
connection (a stream cannot be resynchronised past it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import cast

from aiohttp import web

from adapter.app_state import CLOCK
from adapter.calls.clock import Clock
from adapter.doors.sip import sdp
from adapter.doors.sip.dialog import Address
from adapter.doors.sip.media import MediaHandlers
from adapter.doors.sip.message import MAX_MESSAGE_BYTES
from adapter.doors.sip.rtp import RtpPorts, RtpSession
from adapter.doors.sip.settings import SIP, SipSettings
from adapter.doors.sip.transactions import T1
from adapter.doors.sip.uas import Link, OpenRtp, UserAgent

log = logging.getLogger(__name__)

USER_AGENT = web.AppKey("sip_user_agent", UserAgent)
#: TCP connections open at once: a trunk needs a few; more are closed at once
MAX_TCP_CONNECTIONS = 256
#: a TCP connection without a message this long, and no live call over it, is closed
TCP_IDLE_S = 64 * T1


class SipDatagrams(asyncio.DatagramProtocol):
    def __init__(self, agent: UserAgent) -> None:
        self._agent = agent
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # 3.11's selector transport is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self._transport
        if transport is None:
            return
        local = transport.get_extra_info("sockname")
        self._agent.received(data, Link(addr[:2], local[:2], "UDP", lambda out: transport.sendto(out, addr),
                                        transport.sendto))

    def error_received(self, exc: Exception) -> None:  # an ICMP unreachable from a gone peer
        log.info("sip udp: %s", exc)


class SipStreams:
    """The TCP side: each connection read message by message; at most MAX_TCP_CONNECTIONS open (more are
    closed at once, logged), and one that brought no message for TCP_IDLE_S is closed unless a live call
    came over it (our BYE for it goes down the same stream)."""

    def __init__(self, agent: UserAgent, clock: Clock) -> None:
        self._agent = agent
        self._clock = clock
        self.open: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[:2]
        if len(self.open) >= MAX_TCP_CONNECTIONS:
            self._agent.warn(f"sip TCP {peer[0]}:{peer[1]}: refused: {MAX_TCP_CONNECTIONS} connections open")
            writer.close()
            return
        self.open.add(writer)
        local = writer.get_extra_info("sockname")[:2]
        link = Link(peer, local, "TCP", writer.write, lambda out, _: writer.write(out))
        idle = self._clock.call_later(TCP_IDLE_S, lambda: self._idle(writer, peer))
        try:
            while (message := await read_message(reader)) is not None:
                idle.cancel()
                idle = self._clock.call_later(TCP_IDLE_S, lambda: self._idle(writer, peer))
                self._agent.received(message, link)
        except (asyncio.LimitOverrunError, ValueError) as exc:
            log.warning("sip tcp %s:%d: closing: %s", *peer, exc)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            idle.cancel()
            self.open.discard(writer)
            writer.close()

    def _idle(self, writer: asyncio.StreamWriter, peer: Address) -> None:
        if writer not in self.open:
            return
        if self._agent.has_calls_from(peer):
            self._clock.call_later(TCP_IDLE_S, lambda: self._idle(writer, peer))
            return
        log.info("sip tcp %s:%d: closed after %g s without a message", *peer, TCP_IDLE_S)
        writer.close()


async def read_message(reader: asyncio.StreamReader) -> bytes | None:
    """The next message on a stream (CRLF keep-alives skipped); None at the end of the stream.

    Raises:
        ValueError: a message over MAX_MESSAGE_BYTES, or a bad Content-Length.
    """
    head = b""
    while not head:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).lstrip(b"\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            if not value.strip().isdigit():
                raise ValueError(f"bad Content-Length {value.strip()[:20]!r}")
            length = int(value)
    if len(head) + length > MAX_MESSAGE_BYTES:
        raise ValueError(f"a message over {MAX_MESSAGE_BYTES} bytes")
    return head + await reader.readexactly(length)


def rtp_opener(settings: SipSettings, clock: Clock) -> OpenRtp:
    """Each call's RTP session on an even port of KORE_VOICE_RTP_PORTS, latching onto the SDP address
    or the signalling peer's."""
    ports = RtpPorts(settings.rtp_ports, settings.host)

    async def open_rtp(offer: sdp.Offer, handlers: MediaHandlers, peer: str) -> RtpSession:
        session = RtpSession(ports, (offer.address, offer.port), offer.codec, offer.event_type, handlers, clock,
                             source_allowed=lambda ip: ip in (offer.address, peer))
        await session.start()
        return session

    return open_rtp


def add_sip(app: web.Application, open_rtp: OpenRtp | None = None) -> None:
    """The SIP door, when KORE_VOICE_SIP_PORT is set: its sockets open with the app and close with it.
    `open_rtp` opens each call's RTP session (default: rtp.py's, on KORE_VOICE_RTP_PORTS)."""
    settings = app.get(SIP)
    if settings is None or settings.port is None:
        return
    agent = UserAgent(app, settings, app[CLOCK], open_rtp or rtp_opener(settings, app[CLOCK]))
    app[USER_AGENT] = agent

    async def listening(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: SipDatagrams(agent),
                                                     local_addr=(settings.host, settings.port))
        address: Address = udp.get_extra_info("sockname")[:2]
        tcp = await asyncio.start_server(SipStreams(agent, app[CLOCK]).serve, settings.host, address[1],
                                         limit=MAX_MESSAGE_BYTES)
        agent.address = address
        log.info("sip door listening on %s:%d (udp, tcp)", *address)
        try:
            yield
        finally:
            await agent.close()
            tcp.close()
            udp.close()
            with contextlib.suppress(Exception):
                await tcp.wait_closed()

    app.cleanup_ctx.append(listening)
