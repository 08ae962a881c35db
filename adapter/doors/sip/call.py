"""One SIP call: its dialog, conversation, RTP session and playout, from the INVITE to the last BYE.

The call rings (180) until the conversation has its first output (the bot's welcome is ready), then
answers 200 with our SDP, sent again until the ACK (64·T1 without one: BYE). From the answer on, RTP
goes out every 20 ms for the whole call, as real user agents do: the prompts, and G.711 silence between
them (a PBX's media timeout, Asterisk `rtptimeout` or FreeSWITCH `media_timeout`, would hang up on a
long bot silence, and NAT pinholes would close). Silence rather than comfort noise: every G.711 peer
takes it, whether or not it offered CN, and it needs no change to the SDP. The bot's hang-up or an
RTP silence of the inactivity timeout sends BYE; the bot's transfer sends REFER (refused: BYE, with
the target logged); the caller's BYE or CANCEL hangs the conversation up, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from adapter.calls.clock import Clock
from adapter.calls.events import AudioIn, HangUp, KeyIn, OutputEvent, Transfer
from adapter.conversation.call import Conversation
from adapter.doors.live_call import paced, played
from adapter.doors.pacer import FrameFormat, PacedStream, Pacer
from adapter.doors.sip import sdp
from adapter.doors.sip.dialog import Dialog
from adapter.doors.sip.message import Request, Response, response
from adapter.doors.sip.transactions import Retransmitter, ServerTransaction

if TYPE_CHECKING:
    from adapter.doors.sip.media import MediaSession

log = logging.getLogger(__name__)

#: RTP peers play packets as they come: frames go on the clock, never ahead of it
LEAD_S = 0.0
FRAMES = {"PCMU": FrameFormat(160, b"\xff"), "PCMA": FrameFormat(160, b"\xd5")}
#: how long after its audio should have played we wait before BYE or REFER anyway
GOODBYE_GRACE_S = 2.0
#: after the peer accepted our REFER, how long we wait for it to end the call before BYE
TRANSFER_WAIT_S = 32.0

Respond = Callable[[ServerTransaction, Response], None]
SendRequest = Callable[[Dialog, Request], Awaitable[Response | None]]


@dataclass(frozen=True, slots=True)
class AgentLinks:
    """What a call uses of the user agent that took its INVITE: the app's clock and pacer, answering
    the call's transactions, sending requests in its dialog (over the link the INVITE came by), and
    reporting the call's end so that the agent forgets it."""

    clock: Clock
    pacer: Pacer
    respond: Respond
    send_request: SendRequest
    ended: Callable[[SipCall], None]


class SipCall:
    def __init__(self, invite: ServerTransaction, dialog: Dialog, offer: sdp.Offer, conversation: Conversation,
                 contact: str, media_address: str, links: AgentLinks) -> None:
        self.invite = invite
        self.dialog = dialog
        self.offer = offer
        self.conversation = conversation
        self.rtp: MediaSession | None = None
        self.playout = PacedStream(links.pacer, FRAMES[offer.codec], self._send_frame, played(conversation),
                                   name=f"sip call {dialog.call_id[:40]}", lead_s=LEAD_S,
                                   fill=partial(self._send_frame, speech=False))
        self.contact = contact
        self._media_address = media_address
        self._links = links
        self._session_id = id(self) % 2**31
        self._sdp_version = 0
        self._awaiting_ack: Retransmitter | None = None
        self.answered = False
        self.over = False
        self._transferring = False  # the peer accepted our REFER
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"sip call {self.dialog.call_id[:40]} ({self.conversation.call.user_id})"

    # --- media ---------------------------------------------------------------------------------

    def attach(self, rtp: MediaSession) -> None:
        self.rtp = rtp

    async def _send_frame(self, payload: bytes, speech: bool = True) -> None:
        if self.rtp is not None:
            self.rtp.send(payload, speech)

    def heard(self, pcm: bytes) -> None:
        self.conversation.send(AudioIn(pcm))

    def key(self, key: str) -> None:
        self.conversation.send(KeyIn(key))

    def inactive(self) -> None:
        self.end("no RTP from the caller")

    # --- the conversation's output -------------------------------------------------------------

    def run(self, play: Callable[[OutputEvent], None]) -> None:
        """Read the conversation's events until it ends; then BYE if the caller is still there."""
        self._spawn(self._pump(play), "events")

    async def _pump(self, saw: Callable[[OutputEvent], None]) -> None:
        play = paced(self.playout, self._bot_ended, grace_s=GOODBYE_GRACE_S)
        async for event in self.conversation.events():
            saw(event)
            if not self.answered and not self.over:
                self._answer()
            await play(event)
        if not self._transferring:  # the peer's NOTIFY (or TRANSFER_WAIT_S) ends a transferred call
            self.end("the conversation ended")

    async def _bot_ended(self, event: HangUp | Transfer) -> None:
        """The bot's goodbye has played: BYE, or REFER for a transfer."""
        if isinstance(event, HangUp):
            self.end(f"the bot hung up: {event.reason}")
        else:
            await self._transfer(event.to)

    def _answer(self) -> None:
        """200 OK with our SDP, sent again until the ACK."""
        self.answered = True
        ok = self._ok(self.invite.request)
        self._links.respond(self.invite, ok)
        self.playout.start()  # our RTP from now on, silence until the welcome
        data = ok.encode()
        self._awaiting_ack = Retransmitter(self._links.clock, lambda: self.invite.send(data),
                                           lambda: self.end("no ACK to our 200 OK"))
        self._awaiting_ack.start(send_now=False)

    def _ok(self, request: Request) -> Response:
        self._sdp_version += 1
        body = sdp.answer(self.offer, self._media_address, self.rtp.port if self.rtp else 0,
                          self._session_id, self._sdp_version)
        return response(request, 200, [("Contact", self.contact), ("Content-Type", "application/sdp")],
                        body, to_tag=self.dialog.local_tag)

    # --- the caller's requests -----------------------------------------------------------------

    def acked(self) -> None:
        if self._awaiting_ack is not None:
            self._awaiting_ack.stop()
            self._awaiting_ack = None

    def reinvite(self, tx: ServerTransaction, offer: sdp.Offer) -> None:
        """Hold, unhold or a session refresh: the same codec on the (maybe new) address, our SDP again."""
        self.offer = offer
        if self.rtp is not None:
            self.rtp.retarget(offer.address, offer.port)
        ok = self._ok(tx.request)
        self._links.respond(tx, ok)
        data = ok.encode()
        self.acked()
        self._awaiting_ack = Retransmitter(self._links.clock, lambda: tx.send(data), None)
        self._awaiting_ack.start(send_now=False)

    def cancelled(self, tx: ServerTransaction) -> None:
        """CANCEL before we answered: 487 to the INVITE, and the call is over."""
        if not self.answered:
            self._links.respond(self.invite, response(self.invite.request, 487, to_tag=self.dialog.local_tag))
            self.answered = True  # nothing more to answer
            self._finish("the caller cancelled")

    def caller_hung_up(self) -> None:
        self._finish("caller hung up")

    def notified(self, body: bytes) -> None:
        """Our REFER's progress (a `message/sipfrag` status line): a final one means the transfer is done."""
        status = body.split(b" ", 2)[1] if body.startswith(b"SIP/2.0 ") else b""
        if status.isdigit() and int(status) >= 200:
            self.end(f"transferred ({status.decode()})")

    # --- ending --------------------------------------------------------------------------------

    async def _transfer(self, to: str) -> None:
        target = to if ":" in to else f"sip:{to}@{self.dialog.local.split('@')[-1]}"
        refer = self.dialog.request("REFER", [("Refer-To", f"<{target}>"), ("Referred-By", f"<{self.dialog.local}>"),
                                              ("Contact", self.contact)])
        answer = await self._links.send_request(self.dialog, refer)
        if answer is None or answer.status >= 300:
            status = answer.status if answer else "no answer"
            log.warning("%s: the caller refused our REFER (%s); hanging up instead of transferring to %s",
                        self.name, status, to)
            self.end("transfer refused")
            return
        log.info("%s: transferring to %s", self.name, to)
        self._transferring = True
        self._links.clock.call_later(TRANSFER_WAIT_S, lambda: self.end("transfer done"))

    def end(self, reason: str) -> None:
        """We end the call: BYE once answered (a ringing call gets 480 instead)."""
        if self.over:
            return
        if not self.answered:
            self._links.respond(self.invite, response(self.invite.request, 480, to_tag=self.dialog.local_tag,
                                                reason="Temporarily Unavailable"))
            self.answered = True
        else:
            self._spawn(self._bye(), "bye")
        self._finish(reason)

    async def _bye(self) -> None:
        answer = await self._links.send_request(self.dialog, self.dialog.request("BYE"))
        if answer is None or answer.status >= 300:
            log.info("%s: our BYE got %s", self.name, answer.status if answer else "no answer")

    def _finish(self, reason: str) -> None:
        if self.over:
            return
        self.over = True
        log.info("%s: ended: %s", self.name, reason)
        self.acked()
        self.playout.close()
        if self.rtp is not None:
            self.rtp.close()
        self._links.ended(self)
        self._spawn(self.conversation.hang_up(reason), "hang-up")

    def _spawn(self, work: Awaitable[None], what: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(f"{self.name}: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)



