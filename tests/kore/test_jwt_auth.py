"""Tokens per specs §2.3, checked with PyJWT for every algorithm; caching per sub; one jti per request."""

from __future__ import annotations

import dataclasses

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from adapter.config import Secret
from adapter.kore.jwt_auth import TokenMinter
from adapter.kore.settings import KoreSettings
from adapter.kore.webhook_url import WebhookUrl

from .fakes import FakeTime

SECRET = "0123456789abcdef" * 4  # 64 bytes: long enough for HS512
BASE = KoreSettings(webhook=WebhookUrl.parse("https://bots.kore.ai/chatbot/v2/webhook/st-1"),
                    client_id="cs-app", client_secret=Secret(SECRET), bot_id="st-1")


@pytest.mark.parametrize("algorithm", ["HS256", "HS512", "RS256", "RS512"])
def test_claims_and_signature_for_each_algorithm(algorithm, rsa_key):
    settings = dataclasses.replace(BASE, algorithm=algorithm)
    verify_key = SECRET
    if algorithm.startswith("RS"):
        pem = rsa_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        settings = dataclasses.replace(settings, client_secret=None, private_key=Secret(pem))
        verify_key = rsa_key.public_key()
    clock = FakeTime()
    token = TokenMinter(settings, clock).token("call-42")

    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT"}
    claims = jwt.decode(token, verify_key, algorithms=[algorithm], options={"verify_exp": False})
    iat = int(clock.time())
    assert claims == {"appId": "cs-app", "iss": "cs-app", "sub": "call-42", "iat": iat, "exp": iat + 3000}


def test_tokens_are_cached_per_sub_until_near_expiry():
    clock = FakeTime()
    minter = TokenMinter(BASE, clock)
    first = minter.token("call-1")
    assert minter.token("call-1") == first
    assert minter.token("call-2") != first
    clock.advance(2600)  # 400 s left: still good
    assert minter.token("call-1") == first
    clock.advance(150)  # 250 s left: inside the 5 min margin
    renewed = minter.token("call-1")
    assert renewed != first
    assert jwt.decode(renewed, SECRET, algorithms=["HS256"], options={"verify_exp": False})["iat"] == int(clock.time())


def test_forget_drops_a_cached_token():
    clock = FakeTime()
    minter = TokenMinter(BASE, clock)
    first = minter.token("call-1")
    minter.forget("call-1")
    clock.advance(1)
    assert minter.token("call-1") != first


def test_enforced_jti_means_a_new_token_with_a_new_jti_every_time():
    minter = TokenMinter(dataclasses.replace(BASE, enforce_jti=True), FakeTime())
    tokens = [minter.token("call-1") for _ in range(3)]
    jtis = {jwt.decode(t, SECRET, algorithms=["HS256"], options={"verify_exp": False})["jti"] for t in tokens}
    assert len(set(tokens)) == 3 and len(jtis) == 3


def test_repr_shows_no_key():
    assert repr(TokenMinter(BASE, FakeTime())) == "TokenMinter(app_id='cs-app', algorithm='HS256')"
