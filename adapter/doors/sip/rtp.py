"""RTP (RFC 3550) for the SIP door: packets, the port range, and one call's media session on an
asyncio datagram endpoint.

For the door (adapter/doors/sip/media.py is the seam)::

    ports = RtpPorts(settings.rtp_ports, host)          # once per door; remembers where it got to
    rtp = RtpSession(ports, (sdp_address, sdp_port), "PCMU", event_type=101,
                     handlers=MediaHandlers(audio=..., key=..., inactive=...), clock=clock,
                     source_allowed=lambda ip: ip in (sdp_address, signalling_ip))
    await rtp.start()       # binds an even port of the range: RtpPortsExhausted when none is free
    rtp.port                # for our SDP answer
    rtp.send(payload)       # one 20 ms G.711 frame (160 bytes) of a prompt, called by the door's pacer
    rtp.send(silence, speech=False)  # the same between prompts: the stream never stops
    rtp.retarget(addr, port)  # a re-INVITE's new SDP address: sends there and latches afresh
    rtp.close()             # the socket and the timers; idempotent

Received audio goes through a jitter buffer (jitter.py) and comes out as 16-bit PCM at 8 kHz, one
frame per tick of the injected clock (silence for losses and gaps); keys come from RFC 4733 packets
(telephone_event.py) as they arrive. No packet at all for `inactivity_s` calls `inactive` once.

Latching: peers behind NAT advertise an address in SDP that cannot be reached, so we send to where
their packets actually come from. Until the first packet we send to the SDP address. A packet before
latching is accepted only from a host `source_allowed` accepts (by default the SDP address itself;
the door adds the signalling peer's address): anything else is dropped, counted and logged, so a
stranger spraying the port range cannot take the call's audio (the RTP bleed attacks on
Asterisk's learning mode). Once latched, only that exact address and port is heard until `retarget`.

Bad packets (garbage, wrong version, truncated headers, oversized datagrams, payload types not
negotiated) are dropped and counted in `counts`; nothing a peer sends raises into the event loop.
RTCP is not used: its packets (on this port when multiplexed) are dropped like any other non-RTP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import secrets
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from adapter.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from adapter.calls.clock import Clock, SystemClock, Timer
from adapter.doors.sip.jitter import JitterBuffer
from adapter.doors.sip.media import MediaHandlers
from adapter.doors.sip.telephone_event import EventParseError, KeyEvents

log = logging.getLogger(__name__)

RATE = 8000  # G.711 and telephone-event/8000 clocks
FRAME_S = 0.02
#: static payload types (RFC 3551): both G.711 laws are decoded whichever our answer put first
DECODERS: dict[int, Callable[[bytes], bytes]] = {0: ulaw_to_pcm16, 8: alaw_to_pcm16}
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
COMFORT_NOISE = 13  # RFC 3389: a pause in the peer's audio
#: a G.711 packet is 172 bytes at 20 ms; anything near a 64 KiB datagram is an attack or a mistake
MAX_PACKET_BYTES = 1500
MAX_PAYLOAD_SAMPLES = RATE * 60 // 1000  # ptime up to 60 ms
INACTIVITY_S = 30.0

_HEADER = struct.Struct("!BBHII")


class RtpParseError(ValueError):
    """The datagram is not an RTP packet we can use."""


class RtpPortsExhausted(OSError):
    """Every even port of the RTP range is in use: the door answers the INVITE 503."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False


def parse_rtp(data: bytes) -> RtpPacket:
    """An RTP packet from a datagram: CSRCs and a header extension skipped, padding removed."""
    if len(data) < _HEADER.size:
        raise RtpParseError(f"{len(data)} bytes is shorter than an RTP header")
    first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RtpParseError(f"RTP version {first >> 6}, not 2")
    if 72 <= second & 0x7F <= 76:
        raise RtpParseError("an RTCP packet (RFC 5761 §4)")
    start = _HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # extension: a 16-bit profile word and its length in 32-bit words
        if len(data) < start + 4:
            raise RtpParseError("header extension cut short")
        start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
    end = len(data) - (data[-1] if first & 0x20 else 0)
    if end < start or (first & 0x20 and data[-1] == 0):
        raise RtpParseError("header, extension or padding longer than the packet")
    return RtpPacket(payload_type=second & 0x7F, seq=seq, timestamp=timestamp, ssrc=ssrc,
                     payload=data[start:end], marker=bool(second & 0x80))


def build_rtp(packet: RtpPacket) -> bytes:
    """The packet on the wire: version 2, no padding, extension or CSRCs."""
    second = (0x80 if packet.marker else 0) | packet.payload_type
    return _HEADER.pack(0x80, second, packet.seq, packet.timestamp, packet.ssrc) + packet.payload


class RtpPorts:
    """The even ports of KORE_VOICE_RTP_PORTS on `host`, handed out in turn so that a port just freed
    is reused last (a late packet of the old call lands on a closed port, not on a new call)."""

    def __init__(self, ports: range, host: str = "0.0.0.0") -> None:
        self.range = ports
        self.ports = [port for port in ports if port % 2 == 0]
        self.host = host
        self._turn = itertools.cycle(range(len(self.ports)))

    def bind(self) -> socket.socket:
        """A non-blocking UDP socket on the next free even port; raises RtpPortsExhausted."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET  # KORE_VOICE_SIP_HOST may be a name
        for _ in self.ports:
            port = self.ports[next(self._turn)]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:  # taken, by one of our calls or anyone else
                sock.close()
                continue
            sock.setblocking(False)
            return sock
        raise RtpPortsExhausted(f"no free even RTP port in {self.range.start}-{self.range.stop - 1} on {self.host}")


class RtpSession(asyncio.DatagramProtocol):
    """One call's RTP: receives the caller's audio and keys, sends ours; see the module docstring."""

    def __init__(self, ports: RtpPorts, remote: tuple[str, int], codec: str, event_type: int | None,
                 handlers: MediaHandlers, clock: Clock | None = None, inactivity_s: float = INACTIVITY_S,
                 source_allowed: Callable[[str], bool] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self._ports = ports
        self._remote = remote
        self._payload_type = PAYLOAD_TYPES[codec]
        self._event_type = event_type
        self._handlers = handlers
        self._clock = clock or SystemClock()
        self._inactivity_s = inactivity_s
        self._source_allowed = source_allowed or (lambda host: host == self._remote[0])
        self._latched: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._port = 0
        # receiving
        self._jitter = JitterBuffer(counts=self.counts)
        self._keys = KeyEvents()
        self._ssrc_in: int | None = None
        self._heard_at = 0.0
        self._next_tick = 0.0
        self._silence = bytes(2 * RATE * 20 // 1000)
        self._tick_timer: Timer | None = None
        self._quiet_timer: Timer | None = None
        # sending (RFC 3550 §5.1: random SSRC, first sequence number and timestamp)
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._quiet = True  # our last packet was silence (or none yet): the next speech starts a talk-spurt

    @property
    def port(self) -> int:
        """Our RTP port, for the SDP answer (0 before `start`)."""
        return self._port

    async def start(self) -> None:
        """Bind a port of the range and start listening; raises RtpPortsExhausted."""
        sock = self._ports.bind()
        self._port = sock.getsockname()[1]
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)
        self._heard_at = self._clock.now()
        self._quiet_timer = self._clock.call_later(self._inactivity_s, self._check_quiet)

    def close(self) -> None:
        """Stop the timers and close the socket (asyncio frees the port on the loop's next turn);
        nothing is called back afterwards."""
        for timer in (self._tick_timer, self._quiet_timer):
            if timer is not None:
                timer.cancel()
        self._tick_timer = self._quiet_timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            dropped = {reason: n for reason, n in self.counts.items() if reason not in ("received", "sent")}
            log.info("RTP port %d closed: %d packets in, %d out, dropped %s", self._port,
                     self.counts["received"], self.counts["sent"], dropped or "none")

    # --- sending ----------------------------------------------------------------------------------

    def send(self, payload: bytes, speech: bool = True) -> None:
        """Send one 20 ms frame of G.711 in the negotiated codec: a prompt's, or silence between prompts
        (`speech=False`). The door sends one in every 20 ms slot for the whole call, so sequence numbers
        and timestamps simply count frames; the first speech after silence starts a talk-spurt: marker
        bit (RFC 3551 §4.1). On hold the old way (c=0.0.0.0, RFC 3264 §8.4) nothing goes out, but the
        timestamp counts the frames all the same, as the sampling clock runs on (RFC 3550 §5.1)."""
        if self._transport is None:
            return  # not started, or closed
        if self._remote[1] and not _unspecified(self._remote[0]):
            packet = RtpPacket(self._payload_type, self._seq, self._timestamp & 0xFFFFFFFF, self._ssrc, payload,
                               marker=speech and self._quiet)
            self._transport.sendto(build_rtp(packet), self._latched or self._remote)
            self.counts["sent"] += 1
            self._seq = (self._seq + 1) & 0xFFFF
            self._quiet = not speech
        self._timestamp += len(payload)

    def retarget(self, address: str, port: int) -> None:
        """A new SDP address (re-INVITE): send there, and latch again onto the next packet."""
        self._remote, self._latched = (address, port), None

    # --- receiving --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for a packet we sent (the peer's port closed): nothing to do but count it."""
        self.counts["send_error"] += 1

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self._transport is None:
            return
        source = (str(addr[0]), int(addr[1]))
        if not self._hears(source):
            return
        try:
            if len(data) > MAX_PACKET_BYTES:
                raise RtpParseError(f"a {len(data)}-byte datagram")
            self._take(parse_rtp(data), source)
        except (RtpParseError, EventParseError) as exc:
            self._drop("bad", source, str(exc))

    def _hears(self, source: tuple[str, int]) -> bool:
        """Is this sender the call's peer (see Latching in the module docstring)?"""
        if source == self._latched or (self._latched is None and self._source_allowed(source[0])):
            return True
        self._drop("foreign", source, "not the call's peer")
        return False

    def _take(self, packet: RtpPacket, source: tuple[str, int]) -> None:
        audio = packet.payload_type in DECODERS
        if audio and not 0 < len(packet.payload) <= MAX_PAYLOAD_SAMPLES:
            raise RtpParseError(f"{len(packet.payload)} bytes of G.711")
        if not audio and packet.payload_type not in (self._event_type, COMFORT_NOISE):
            raise RtpParseError(f"payload type {packet.payload_type} was not negotiated")
        key = None
        if packet.payload_type == self._event_type:
            key = self._keys.key(packet.ssrc, packet.timestamp, packet.payload)
        if audio and packet.ssrc != self._ssrc_in:  # a new stream: its numbering starts afresh
            self._ssrc_in, self._jitter = packet.ssrc, JitterBuffer(counts=self.counts)
        if packet.ssrc == self._ssrc_in:  # events and comfort noise hold a sequence number, not audio
            self._jitter.push(packet.seq, DECODERS[packet.payload_type](packet.payload) if audio else None)
        self._heard(source)
        if key is not None:
            self._handlers.key(key)

    def _heard(self, source: tuple[str, int]) -> None:
        """A good packet from the peer: latch onto its source, keep the call alive, start the ticks."""
        if self._latched is None:
            self._latched = source
            log.info("RTP port %d latched onto %s:%d", self._port, *source)
        self.counts["received"] += 1
        self._heard_at = self._clock.now()
        if self._tick_timer is None:
            self._next_tick = self._heard_at + FRAME_S
            self._tick_timer = self._clock.call_later(FRAME_S, self._tick)

    def _tick(self) -> None:
        """Hand the call one frame (silence when the buffer has none) and wait for the next tick."""
        frame = self._jitter.pop()
        if frame is None:
            frame = self._silence
        elif len(frame) != len(self._silence):  # the peer's packet time: 20 ms unless it chose another
            self._silence = bytes(len(frame))
        self._next_tick = max(self._next_tick + len(frame) / (2 * RATE), self._clock.now() - 5 * FRAME_S)
        self._tick_timer = self._clock.call_later(self._next_tick - self._clock.now(), self._tick)
        self._handlers.audio(frame)

    def _check_quiet(self) -> None:
        quiet = self._clock.now() - self._heard_at
        if quiet < self._inactivity_s:
            self._quiet_timer = self._clock.call_later(self._inactivity_s - quiet, self._check_quiet)
            return
        self._quiet_timer = None
        log.info("RTP port %d: nothing from the peer for %.0f s", self._port, quiet)
        self._handlers.inactive()

    def _drop(self, reason: str, source: tuple[str, int], detail: str) -> None:
        """Count a dropped packet; log the first of each kind (a flood must not flood the log)."""
        self.counts[reason] += 1
        if self.counts[reason] == 1:
            log.warning("RTP port %d: dropped a packet from %s:%d (%s); more are counted, not logged",
                        self._port, *source, detail)


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
