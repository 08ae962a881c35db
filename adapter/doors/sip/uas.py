"""The SIP user agent server: every datagram or stream message in, each request to its transaction,
dialog and call, and the answers out (RFC 3261 §8.2, §12, §15, §17).

INVITE 100/180/200 (488 no G.711, 503 + Retry-After at KORE_VOICE_MAX_CALLS or without an RTP port),
ACK, BYE, CANCEL (487), OPTIONS 200, re-INVITE answered with our SDP, INFO `application/dtmf-relay`,
NOTIFY for our REFER, 403 to peers off KORE_VOICE_SIP_ALLOW, 481 for dialogs we do not have, 501 for
other methods. Malformed messages get 400 when they can be answered, else are dropped; either way one
log line, rate-limited, and every other call goes on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from adapter.app_state import METRICS
from adapter.call_registry import TooManyCalls
from adapter.calls.clock import Clock
from adapter.calls.info import CallInfo
from adapter.conversation.services import AudioSpec
from adapter.doors.open_call import open_call
from adapter.doors.pacer import PACER
from adapter.doors.sip import sdp
from adapter.doors.sip.call import AgentLinks, SipCall
from adapter.doors.sip.dialog import Address, Dialog
from adapter.doors.sip.media import MediaHandlers, MediaSession
from adapter.doors.sip.message import (
    Request,
    Response,
    SipParseError,
    new_tag,
    param,
    parse,
    response,
    uri_of,
    user_of,
)
from adapter.doors.sip.settings import SipSettings
from adapter.doors.sip.transactions import ClientTransactions, ServerTransaction, ServerTransactions

log = logging.getLogger(__name__)

DOOR = "sip"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY"
RETRY_AFTER_S = 30
#: warnings about bad input logged per minute at most (a flood must not flood the log too)
WARNINGS_PER_MINUTE = 20
DTMF_INFO_TYPES = ("application/dtmf-relay", "application/dtmf")

#: opens a call's RTP session for an offer, its handlers and the signalling peer's address
OpenRtp = Callable[[sdp.Offer, MediaHandlers, str], Awaitable[MediaSession]]


@dataclass(frozen=True, slots=True)
class Link:
    """How one message arrived, and so how to answer it and reach its sender later."""

    peer: Address
    local: Address  # the address and port it reached
    transport: str  # "UDP" or "TCP"
    send: Callable[[bytes], None]  # to the peer (responses)
    send_to: Callable[[bytes, Address], None]  # to an address (UDP) or down the same stream (TCP)

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


class UserAgent:
    def __init__(self, app: web.Application, settings: SipSettings, clock: Clock, open_rtp: OpenRtp) -> None:
        self._app = app
        self._settings = settings
        self._clock = clock
        self._open_rtp = open_rtp
        self.server = ServerTransactions(clock)
        self.client = ClientTransactions(clock)
        self.calls: dict[tuple[str, str], SipCall] = {}  # by (Call-ID, our tag)
        self._ringing: dict[tuple[str, str], SipCall] = {}  # by the INVITE's (Call-ID, branch), for CANCEL
        self._tasks: set[asyncio.Task[None]] = set()
        self._warnings = (0.0, 0)  # (minute started, warnings logged in it)
        self.address: Address = ("", 0)  # where the listener is bound, once it is (port 0 picks one)

    # --- in --------------------------------------------------------------------------------------

    def received(self, data: bytes, link: Link) -> None:
        """One message from `link.peer`; never raises (a bad message must not stop the listener)."""
        if not data.strip():
            return  # a keep-alive CRLF (RFC 5626)
        try:
            message = parse(data)
        except SipParseError as exc:
            self._warn(link, f"malformed message: {exc.reason}")
            if exc.message is not None and exc.message.method != "ACK":
                link.send(response(exc.message, 400, reason=f"Bad Request ({exc.reason})"[:100]).encode())
            return
        try:
            if isinstance(message, Response):
                self.client.received(message)
            else:
                self._request(message, link)
        except Exception:
            log.exception("sip: %s from %s failed", getattr(message, "method", "response"), link.peer[0])
            if isinstance(message, Request) and message.method != "ACK":
                link.send(response(message, 500).encode())

    def _request(self, request: Request, link: Link) -> None:
        if not self._settings.allows(link.peer[0]):
            if request.method != "ACK":
                self._warn(link, f"{request.method} refused: {link.peer[0]} is not in KORE_VOICE_SIP_ALLOW")
                link.send(response(request, 403, to_tag=new_tag()).encode())
            return
        if self.server.absorbed(request):
            return
        tx = self.server.open(request, link.send, link.reliable)
        handlers = {"INVITE": self._invite, "ACK": self._ack, "BYE": self._bye, "CANCEL": self._cancel,
                    "OPTIONS": self._options, "INFO": self._info, "NOTIFY": self._notify}
        handler = handlers.get(request.method)
        if handler is None:
            self.server.respond(tx, response(request, 501, [("Allow", ALLOW)], to_tag=new_tag()))
            return
        handler(tx, link)

    def _dialog_call(self, request: Request) -> SipCall | None:
        return self.calls.get((request.call_id, param(request.get("To") or "", "tag") or ""))

    def _in_dialog(self, tx: ServerTransaction) -> SipCall | None:
        """The call an in-dialog request belongs to; None after answering 481."""
        call = self._dialog_call(tx.request)
        if call is None:
            self.server.respond(tx, response(tx.request, 481))
        return call

    # --- methods -----------------------------------------------------------------------------------

    def _options(self, tx: ServerTransaction, link: Link) -> None:
        self.server.respond(tx, response(tx.request, 200, [("Allow", ALLOW), ("Accept", "application/sdp"),
                                                           ("Supported", "")], to_tag=new_tag()))

    def _ack(self, tx: ServerTransaction, link: Link) -> None:
        call = self._dialog_call(tx.request)
        if call is not None:
            call.acked()

    def _bye(self, tx: ServerTransaction, link: Link) -> None:
        call = self._in_dialog(tx)
        if call is not None:
            self.server.respond(tx, response(tx.request, 200))
            call.caller_hung_up()

    def _cancel(self, tx: ServerTransaction, link: Link) -> None:
        call = self._ringing.get((tx.request.call_id, tx.request.branch))
        if call is None:
            self.server.respond(tx, response(tx.request, 481))
            return
        self.server.respond(tx, response(tx.request, 200, to_tag=call.dialog.local_tag))
        call.cancelled(tx)

    def _info(self, tx: ServerTransaction, link: Link) -> None:
        call = self._in_dialog(tx)
        if call is None:
            return
        kind = (tx.request.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in DTMF_INFO_TYPES:
            self.server.respond(tx, response(tx.request, 415, [("Accept", ", ".join(DTMF_INFO_TYPES))]))
            return
        self.server.respond(tx, response(tx.request, 200))
        key = dtmf_relay_key(tx.request.body)
        if key is not None:
            call.key(key)

    def _notify(self, tx: ServerTransaction, link: Link) -> None:
        call = self._in_dialog(tx)
        if call is not None:
            self.server.respond(tx, response(tx.request, 200))
            call.notified(tx.request.body)

    def _invite(self, tx: ServerTransaction, link: Link) -> None:
        request = tx.request
        if param(request.get("To") or "", "tag") is not None:
            call = self._in_dialog(tx)
            offer = self._offer(tx) if call is not None else None
            if call is not None and offer is not None:
                call.reinvite(tx, offer)
            return
        self.server.respond(tx, response(request, 100))
        offer = self._offer(tx)
        if offer is None:
            return
        info = CallInfo.new(DOOR, caller_of(request), called_of(request))
        audio = AudioSpec(in_rate=8000, out_format="ulaw8k" if offer.codec == "PCMU" else "alaw8k", live=True,
                          reports_playback=True, inband_dtmf=offer.event_type is None)
        try:
            conversation = open_call(self._app, info, audio)
        except TooManyCalls as exc:
            self._warn(link, f"INVITE {request.call_id[:40]} refused: {exc}")
            self.server.respond(tx, response(request, 503, [("Retry-After", str(RETRY_AFTER_S))], to_tag=new_tag()))
            return
        advertised = self._advertised(link)
        port = link.local[1]
        transport = ";transport=tcp" if link.reliable else ""
        via = f"SIP/2.0/{link.transport} {host(advertised)}:{port}"
        dialog = Dialog.from_invite(request, new_tag(), link.peer, via)
        contact = f"<sip:kore-voice@{host(advertised)}:{port}{transport}>"
        links = AgentLinks(self._clock, self._app[PACER], self.server.respond, lambda d, r: self._send(d, r, link),
                           self._forget)
        call = SipCall(tx, dialog, offer, conversation, contact, advertised, links)
        self.calls[(dialog.call_id, dialog.local_tag)] = call
        self._ringing[(request.call_id, request.branch)] = call
        self._spawn(self._ring(call), f"ringing {request.call_id[:40]}")

    async def _ring(self, call: SipCall) -> None:
        """Open the call's RTP port, ring, and let the conversation's first output answer it."""
        try:
            rtp = await self._open_rtp(call.offer, MediaHandlers(call.heard, call.key, call.inactive),
                                       call.dialog.source[0])
        except OSError as exc:
            self.warn(f"{call.name}: no RTP port: {exc}")
            self.server.respond(call.invite, response(call.invite.request, 503, [("Retry-After", str(RETRY_AFTER_S))],
                                                      to_tag=call.dialog.local_tag))
            call.answered = True
            call.end("no RTP port")
            return
        if call.over:  # cancelled while the port opened
            rtp.close()
            return
        call.attach(rtp)
        self.server.respond(call.invite, response(call.invite.request, 180, [("Contact", call.contact)],
                                                  to_tag=call.dialog.local_tag))
        metrics = self._app[METRICS]
        call.run(lambda event: metrics.saw(DOOR, event))

    def _offer(self, tx: ServerTransaction) -> sdp.Offer | None:
        """The INVITE's SDP offer; None after answering 415 or 488."""
        request = tx.request
        kind = (request.get("Content-Type") or "application/sdp").split(";")[0].strip().lower()
        if kind != "application/sdp":
            self.server.respond(tx, response(request, 415, [("Accept", "application/sdp")], to_tag=new_tag()))
            return None
        try:
            if not request.body.strip():
                raise sdp.SdpError("no SDP offer in the INVITE (offers in the ACK are not supported)")
            return sdp.parse_offer(request.body)
        except sdp.SdpError as exc:
            self.warn(f"sip: INVITE {request.call_id[:40]}: 488: {exc}")
            self.server.respond(tx, response(request, 488, [("Warning", f'304 kore-voice "{exc}"'[:200])],
                                             to_tag=new_tag()))
            return None

    # --- out ---------------------------------------------------------------------------------------

    async def _send(self, dialog: Dialog, request: Request, link: Link) -> Response | None:
        hop = dialog.next_hop()
        return await self.client.send(request, lambda data: link.send_to(data, hop), link.reliable)

    def _advertised(self, link: Link) -> str:
        """The address Contact and SDP give: KORE_VOICE_SIP_PUBLIC_ADDRESS, else the one the peer reached."""
        if self._settings.public_address:
            return self._settings.public_address
        if link.local[0] not in ("0.0.0.0", "::"):
            return link.local[0]
        return local_address_towards(link.peer[0])

    def _forget(self, call: SipCall) -> None:
        self.calls.pop((call.dialog.call_id, call.dialog.local_tag), None)
        self._ringing.pop((call.invite.request.call_id, call.invite.request.branch), None)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _warn(self, link: Link, what: str) -> None:
        self.warn(f"sip {link.transport} {link.peer[0]}:{link.peer[1]}: {what}")

    def warn(self, line: str) -> None:
        """One warning about bad input or a refusal, at most WARNINGS_PER_MINUTE a minute: a flood must
        not flood the log too."""
        started, count = self._warnings
        now = self._clock.now()
        if now - started >= 60:
            if count > WARNINGS_PER_MINUTE:
                log.warning("sip: %d more warnings in the last minute were not logged", count - WARNINGS_PER_MINUTE)
            started, count = now, 0
        if count < WARNINGS_PER_MINUTE:
            log.warning("%s", line)
        self._warnings = (started, count + 1)

    def has_calls_from(self, peer: Address) -> bool:
        """A live call's INVITE came from `peer` (for TCP: over that connection, which its BYE needs)."""
        return any(call.dialog.source == peer for call in self.calls.values())

    async def close(self) -> None:
        """Hang every call up (BYE) and wait for their conversations to close."""
        for call in list(self.calls.values()):
            call.end("the service is stopping")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def caller_of(request: Request) -> str | None:
    """The caller: P-Asserted-Identity's user, else From's."""
    return user_of(uri_of(request.get("P-Asserted-Identity") or request.get("From") or ""))


def called_of(request: Request) -> str | None:
    """The number called: the Request-URI's user, else To's."""
    return user_of(request.uri) or user_of(uri_of(request.get("To") or ""))


def dtmf_relay_key(body: bytes) -> str | None:
    """The key of an INFO body: `Signal=5` (application/dtmf-relay) or a bare `5` (application/dtmf)."""
    text = body.decode(errors="replace").strip()
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq and name.strip().lower() == "signal":
            text = value.strip()
            break
    key = {"10": "*", "11": "#"}.get(text, text)
    return key if len(key) == 1 and key in "0123456789*#" else None


def host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def local_address_towards(peer: str) -> str:
    """Our address on the route to `peer` (a connected UDP socket sends nothing)."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((peer, 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
