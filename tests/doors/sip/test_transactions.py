"""RFC 3261 §17 timers on a manual clock: 2xx and non-2xx finals sent again on T1 doubling to T2 until
the ACK, given up after 64·T1; retransmitted requests answered again with the same response."""

from __future__ import annotations

from adapter.doors.sip.message import Request, parse, response
from adapter.doors.sip.transactions import T1, TIMEOUT, Retransmitter, ServerTransactions
from tests.conversation.manual_clock import ManualClock
from tests.doors.sip.conftest import request as raw_request


def invite(method: str = "INVITE", branch: str = "z9hG4bK-1") -> Request:
    message = parse(raw_request(method, 5071, branch=branch))
    assert isinstance(message, Request)
    return message


def sent_times(clock: ManualClock, until: float) -> tuple[list[float], list[bool]]:
    times: list[float] = []
    gave_up: list[bool] = []
    retransmitter = Retransmitter(clock, lambda: times.append(clock.now() - 1000.0), lambda: gave_up.append(True))
    retransmitter.start()
    clock.advance(until)
    return times, gave_up


def test_a_2xx_is_sent_again_on_t1_doubling_to_t2_and_given_up_after_64_t1() -> None:
    times, gave_up = sent_times(ManualClock(), TIMEOUT + 1)
    assert times[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]  # gaps 0.5, 1, 2, 4, 4
    assert times[-1] <= TIMEOUT and gave_up == [True]


def test_the_ack_stops_the_retransmissions() -> None:
    clock = ManualClock()
    sent: list[float] = []
    retransmitter = Retransmitter(clock, lambda: sent.append(clock.now()))
    retransmitter.start()
    clock.advance(T1 * 3 + 0.1)
    retransmitter.stop()
    clock.advance(TIMEOUT)
    assert len(sent) == 3 and clock.pending == 0


def test_retransmitted_requests_get_the_same_answer_and_a_non_2xx_waits_for_its_ack() -> None:
    clock = ManualClock()
    transactions = ServerTransactions(clock)
    wire: list[bytes] = []
    request = invite()
    tx = transactions.open(request, wire.append)
    busy = response(request, 486, to_tag="t")
    transactions.respond(tx, busy)
    assert transactions.absorbed(invite())  # the INVITE again: the 486 again
    assert wire == [busy.encode()] * 2
    clock.advance(T1 + 0.01)
    assert len(wire) == 3  # sent again without an ACK
    assert transactions.absorbed(invite("ACK"))
    clock.advance(TIMEOUT)
    assert len(wire) == 3 and len(transactions) == 0
    assert not transactions.absorbed(invite("INVITE", branch="z9hG4bK-new"))
