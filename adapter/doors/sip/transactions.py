"""SIP transactions (RFC 3261 §17) on an injected clock, so tests move time by hand.

- `Retransmitter`: send again at T1, 2·T1, ... capped at T2 until stopped; give up after 64·T1. The
  dialog layer uses it for our 2xx to an INVITE (until the ACK comes, §13.3.1.4).
- `ServerTransactions`: a retransmitted request is answered again with the same response instead of
  reaching the dialog layer twice; a non-2xx final to an INVITE is sent again until its ACK (§17.2.1).
- `ClientTransactions`: our own requests (BYE, REFER) sent again until a final response, which
  resolves their future; None after 64·T1 without one.

Over TCP nothing but our 2xx is sent twice (§17: reliable transports retransmit for us).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from adapter.calls.clock import Clock, Timer
from adapter.doors.sip.message import Request, Response, param

log = logging.getLogger(__name__)

T1 = 0.5
T2 = 4.0
TIMEOUT = 64 * T1

Send = Callable[[bytes], None]
Key = tuple[str, ...]


class Retransmitter:
    """Calls `send` now and again at T1 doubling up to T2 until `stop()`; after TIMEOUT calls `give_up`."""

    def __init__(self, clock: Clock, send: Callable[[], None], give_up: Callable[[], None] | None = None,
                 repeat: bool = True) -> None:
        self._clock = clock
        self._send = send
        self._give_up = give_up
        self._repeat = repeat
        self._timers: list[Timer] = []
        self._interval = T1

    def start(self, send_now: bool = True) -> None:
        if send_now:
            self._send()
        if self._repeat:
            self._timers.append(self._clock.call_later(T1, self._again))
        self._timers.append(self._clock.call_later(TIMEOUT, self._expired))

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _again(self) -> None:
        self._send()
        self._interval = min(self._interval * 2, T2)
        self._timers.append(self._clock.call_later(self._interval, self._again))

    def _expired(self) -> None:
        self.stop()
        if self._give_up is not None:
            self._give_up()


def transaction_key(request: Request) -> Key:
    """What names a server transaction: the branch (RFC 3261), else the RFC 2543 fields (§17.2.3).
    An ACK belongs to the INVITE it acknowledges (for a non-2xx final: same branch)."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = request.branch
    if branch.startswith("z9hG4bK"):
        return branch, method
    return request.call_id, str(request.cseq[0]), method, param(request.get("From") or "", "tag") or ""


@dataclass(slots=True)
class ServerTransaction:
    request: Request
    send: Send
    reliable: bool
    last: bytes | None = None
    final: bool = False
    retransmitter: Retransmitter | None = None
    expiry: Timer | None = field(default=None)


class ServerTransactions:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._live: dict[Key, ServerTransaction] = {}

    def __len__(self) -> int:
        return len(self._live)

    def absorbed(self, request: Request) -> bool:
        """True when `request` belongs to a transaction we have: a retransmission is answered again
        with our last response; an ACK to our non-2xx final stops its retransmission."""
        tx = self._live.get(transaction_key(request))
        if tx is None:
            return False
        if request.method == "ACK":
            if tx.retransmitter is None:  # the ACK to a 2xx has its own branch; this one is not ours
                return False
            tx.retransmitter.stop()
            tx.retransmitter = None
        elif tx.last is not None:
            tx.send(tx.last)
        return True

    def open(self, request: Request, send: Send, reliable: bool = False) -> ServerTransaction:
        tx = ServerTransaction(request, send, reliable)
        if request.method != "ACK":
            self._live[transaction_key(request)] = tx
        return tx

    def find(self, request: Request, method: str) -> ServerTransaction | None:
        """The transaction `request` (a CANCEL) refers to: the same branch, for `method`."""
        return self._live.get((*transaction_key(request)[:-1], method))

    def respond(self, tx: ServerTransaction, response: Response) -> None:
        """Send `response` in `tx`; a final one is kept for retransmissions until TIMEOUT."""
        if tx.final:
            return
        data = response.encode()
        tx.last = data
        tx.send(data)
        if response.status < 200:
            return
        tx.final = True
        key = transaction_key(tx.request)
        if tx.request.method == "INVITE" and response.status >= 300:
            tx.retransmitter = Retransmitter(self._clock, lambda: tx.send(data), repeat=not tx.reliable)
            tx.retransmitter.start(send_now=False)
        tx.expiry = self._clock.call_later(TIMEOUT, lambda: self._forget(key, tx))

    def _forget(self, key: Key, tx: ServerTransaction) -> None:
        if tx.retransmitter is not None:
            tx.retransmitter.stop()
            log.info("sip: no ACK to our %s for %s", tx.last[:12] if tx.last else b"", tx.request.call_id)
        if self._live.get(key) is tx:
            del self._live[key]


class ClientTransactions:
    """Our requests, each waiting for its final response (matched by branch)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiting: dict[str, tuple[asyncio.Future[Response | None], Retransmitter]] = {}

    def send(self, request: Request, send: Send, reliable: bool = False) -> asyncio.Future[Response | None]:
        """Send `request`; the future resolves to its final response, or None after TIMEOUT."""
        branch = request.branch
        future: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        data = request.encode()
        retransmitter = Retransmitter(self._clock, lambda: send(data), lambda: self._resolve(branch, None),
                                      repeat=not reliable)
        self._waiting[branch] = (future, retransmitter)
        retransmitter.start()
        return future

    def received(self, response: Response) -> bool:
        """True when `response` answers one of our requests."""
        if response.branch not in self._waiting:
            return False
        if response.status >= 200:
            self._resolve(response.branch, response)
        return True

    def _resolve(self, branch: str, response: Response | None) -> None:
        future, retransmitter = self._waiting.pop(branch, (None, None))
        if future is None or retransmitter is None:
            return
        retransmitter.stop()
        if not future.done():
            future.set_result(response)
