"""Media Stream tokens: issued by one instance, redeemed by any with the same Auth Token, once, in time,
for their own call."""

from __future__ import annotations

import asyncio

import pytest
from conversation.manual_clock import ManualClock

from adapter.doors.twilio.stream_token import (
    StreamGrant,
    StreamTokenError,
    StreamTokens,
)

AUTH = "auth-token-0123456789abcdef"
SID = "CA" + "a" * 32
OTHER_SID = "CA" + "b" * 32


def redeem(tokens: StreamTokens, token: object, sid: str = SID) -> StreamGrant:
    return asyncio.run(tokens.redeem(token, sid))


def refused(tokens: StreamTokens, token: object, sid: str = SID) -> str:
    with pytest.raises(StreamTokenError) as err:
        redeem(tokens, token, sid)
    return err.value.reason


def test_a_token_names_its_call_and_any_instance_with_the_auth_token_accepts_it_once():
    clock = ManualClock()
    token = StreamTokens(AUTH, clock).issue(SID, "+15551230000", "+15559870000")
    elsewhere = StreamTokens(AUTH, clock)  # another process, or after a restart: no shared state
    assert redeem(elsewhere, token) == StreamGrant(SID, "+15551230000", "+15559870000", clock.time() + 60.0)
    assert refused(elsewhere, token) == "the stream token was already used"


def test_every_token_is_new_even_for_the_same_call():
    tokens = StreamTokens(AUTH, ManualClock())
    first, second = tokens.issue(SID, "a", "b"), tokens.issue(SID, "a", "b")
    assert first != second
    assert redeem(tokens, first).call_sid == redeem(tokens, second).call_sid == SID


def test_a_token_expires_after_its_ttl():
    clock = ManualClock()
    tokens = StreamTokens(AUTH, clock, ttl_s=60.0)
    token = tokens.issue(SID, "a", "b")
    clock.advance(60.5)
    assert refused(tokens, token) == "the stream token expired 0 s ago"
    clock.advance(100)
    assert refused(tokens, token) == "the stream token expired 100 s ago"


def test_a_token_is_for_its_own_call_only():
    tokens = StreamTokens(AUTH, ManualClock())
    reason = f"the stream token is for call {SID}, not {OTHER_SID}"
    assert refused(tokens, tokens.issue(SID, "a", "b"), OTHER_SID) == reason


def test_forged_and_tampered_tokens_are_refused():
    tokens = StreamTokens(AUTH, ManualClock())
    forged = StreamTokens("another account's token", ManualClock()).issue(SID, "a", "b")
    reason = "the stream token's signature does not match (forged, or another Auth Token)"
    assert refused(tokens, forged) == reason
    payload, mac = tokens.issue(SID, "a", "b").split(".")
    other_payload = tokens.issue(OTHER_SID, "a", "b").split(".")[0]
    assert refused(tokens, f"{other_payload}.{mac}") == reason
    assert refused(tokens, f"{payload}.{mac[:-2]}") == reason
    assert refused(tokens, f"{payload}.!!!") == reason


@pytest.mark.parametrize(("token", "reason"), [
    (None, "the stream has no token (customParameters.token)"),
    ("", "the stream has no token (customParameters.token)"),
    (42, "the stream has no token (customParameters.token)"),
    ("no-dot-here", "the stream token is malformed"),
    ("x." + "y" * 2000, "the stream token is malformed"),
])
def test_missing_and_malformed_tokens_say_why(token, reason):
    assert refused(StreamTokens(AUTH, ManualClock()), token) == reason


def test_spent_tokens_are_forgotten_once_they_would_have_expired_anyway():
    clock = ManualClock()
    tokens = StreamTokens(AUTH, clock, ttl_s=60.0)
    for _ in range(5):
        redeem(tokens, tokens.issue(SID, "a", "b"))
    clock.advance(61)
    redeem(tokens, tokens.issue(SID, "a", "b"))
    assert len(tokens.spent._spent) == 1
