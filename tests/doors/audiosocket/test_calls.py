"""The AudioSocket call book on its own: registrations and ended calls are kept KEEP_S on the clock."""

from __future__ import annotations

import uuid

import pytest
from conversation.manual_clock import ManualClock

from adapter.api_errors import ApiError
from adapter.doors.audiosocket.calls import KEEP_S, CallBook, Ended, Numbers


def test_a_registration_waits_keep_s_for_its_call():
    clock, call = ManualClock(), uuid.uuid4()
    book = CallBook(clock)
    book.register(call, Numbers("+1555", "+1666"))
    clock.advance(KEEP_S - 1)
    assert book.describe(call) == {"uuid": str(call), "state": "registered", "action": None, "transfer_to": None}
    clock.advance(1)
    assert book.describe(call) is None and book.connect(call) is None


def test_a_call_connects_once_at_a_time_and_its_outcome_is_kept_keep_s():
    clock, call = ManualClock(), uuid.uuid4()
    book = CallBook(clock)
    book.register(call, Numbers("+1555", None))
    assert book.connect(call) == Numbers("+1555", None)
    with pytest.raises(LookupError):
        book.connect(call)
    with pytest.raises(ApiError) as err:
        book.register(call, Numbers(None, None))
    assert err.value.status == 409
    book.end(call, Ended("transfer", "sip:agent@example.com"))
    assert book.describe(call) == {"uuid": str(call), "state": "ended", "action": "transfer",
                                   "transfer_to": "sip:agent@example.com"}
    assert book.connect(call) is None  # a dialplan that reuses its UUID: a new call, no numbers
    book.end(call, Ended(None))
    clock.advance(KEEP_S)
    assert book.describe(call) is None
