"""Signed webhooks, checked as Vonage signs them (PyJWT HS256 with `payload_hash`): right, wrong secret,
wrong hash, stale, from the future, unsigned, and a token of another algorithm."""

from __future__ import annotations

import hashlib
import json
import time

import jwt
import pytest

from adapter.api_errors import ApiError
from adapter.doors.vonage.signature import MAX_AGE_S, query_payload, verify
from adapter.testing.vonage_peer import answer_query, signed_headers, status_event

SECRET = "vonage-signature-secret-0123456789"
BODY = json.dumps(status_event("aaaa-bbbb-cccc", "completed")).encode()
NOW = time.time()


def test_a_signed_body_is_taken():
    claims = verify(signed_headers(SECRET, BODY, iat=NOW)["Authorization"], BODY, SECRET, NOW)
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest()


def test_a_get_is_signed_over_its_query_as_compact_json_in_order():
    query = answer_query("aaaa-bbbb-cccc", "15551230000", "15559870000")
    payload = query_payload(query)
    assert payload.startswith(b'{"to":"15559870000","from":"15551230000",')
    verify(signed_headers(SECRET, payload, iat=NOW)["Authorization"], payload, SECRET, NOW)


@pytest.mark.parametrize("authorization,why", [
    (signed_headers("another-secret-0123456789-0123456789", BODY, iat=NOW)["Authorization"], "InvalidSignatureError"),
    (signed_headers(SECRET, BODY, iat=NOW, payload_hash="0" * 64)["Authorization"], "payload_hash"),
    (signed_headers(SECRET, BODY + b" ", iat=NOW)["Authorization"], "payload_hash"),
    (signed_headers(SECRET, BODY, iat=NOW - MAX_AGE_S - 5)["Authorization"], "iat"),
    (signed_headers(SECRET, BODY, iat=NOW + MAX_AGE_S + 5)["Authorization"], "iat"),
    ("", "no Authorization"),
    ("Basic dXNlcjpwYXNz", "no Authorization"),
    ("Bearer not.a.jwt", "DecodeError"),
    ("Bearer " + jwt.encode({"iat": int(NOW), "payload_hash": hashlib.sha256(BODY).hexdigest()}, SECRET,
                            algorithm="HS512"), "InvalidAlgorithmError"),
    ("Bearer " + jwt.encode({"iat": int(NOW)}, SECRET, algorithm="HS256"), "MissingRequiredClaimError"),
])
def test_anything_else_is_401_and_says_why_without_the_secret(authorization, why):
    with pytest.raises(ApiError) as caught:
        verify(authorization, BODY, SECRET, NOW)
    assert caught.value.status == 401 and caught.value.code == "bad_signature"
    assert why in caught.value.message and SECRET not in caught.value.message
