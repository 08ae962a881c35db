"""X-Twilio-Signature checks, signed by the official `twilio` library as Twilio would sign them."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import HMAC_SHA256, RequestValidator

from adapter.api_errors import ApiError, error_response
from adapter.config_reader import Secret
from adapter.doors.twilio.settings import TwilioSettings
from adapter.doors.twilio.signature import (
    FORM,
    MAX_WEBHOOK_BYTES,
    parse_body,
    signed_url,
    verified_params,
)

TOKEN = "12345"
PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
          "From": "+12349013030", "To": "+18005551212"}
PUBLIC = "https://example.com"


def test_the_spec_vectors_hold_for_the_library() -> None:
    """specs/telephony.md §1.5: the vectors we rely on, so a library change that broke them shows here."""
    v = RequestValidator(TOKEN)
    assert v.compute_signature("https://mycompany.com/myapp.php?foo=1&bar=2", PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert v.compute_signature("https://example.com/voice/gather?lang=en", PARAMS) == "WxjVIE9Bf59oAffi9Bi5KPS4Ifg="
    assert (v.compute_signature("https://example.com/voice/gather?lang=en", PARAMS, algorithm=HMAC_SHA256)
            == "CoRlwYPP9Kig85u5AkHI3LO6DMxdk+l7TD8034ynysY=")


def make_app(settings: TwilioSettings, public_url: str | None = PUBLIC) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        try:
            params = await verified_params(request, settings, public_url)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        return web.json_response(dict(params))

    app = web.Application()
    app.router.add_route("*", "/voice/gather", echo)
    return app


@pytest.fixture
async def client(aiohttp_client) -> TestClient:
    return await aiohttp_client(make_app(TwilioSettings(auth_token=Secret(TOKEN))))


def form_headers(signature: str, **extra: str) -> dict[str, str]:
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded", **extra}


async def test_a_signed_form_passes_and_gives_its_parameters(client: TestClient) -> None:
    resp = await client.post("/voice/gather?lang=en", data=urlencode(PARAMS),
                             headers=form_headers("WxjVIE9Bf59oAffi9Bi5KPS4Ifg="))
    assert resp.status == 200
    assert await resp.json() == PARAMS


async def test_repeated_parameters_are_all_signed(client: TestClient) -> None:
    pairs = [("To", "+1"), ("Tag", "b"), ("Tag", "a")]
    url = f"{PUBLIC}/voice/gather"
    expected = RequestValidator(TOKEN).compute_signature(url, MultiDict(pairs))
    resp = await client.post("/voice/gather", data=urlencode(pairs), headers=form_headers(expected))
    assert resp.status == 200


@pytest.mark.parametrize(("signature", "url", "body"), [
    ("", f"{PUBLIC}/voice/gather", PARAMS),                                    # missing
    (None, f"{PUBLIC}/voice/gather", PARAMS),                                  # signed with another token
    ("sign", "https://evil.example/voice/gather", PARAMS),                     # another URL
    ("sign", f"{PUBLIC}/voice/gather", {**PARAMS, "Digits": "9999"}),         # tampered after signing
])
async def test_bad_signatures_answer_403_in_one_json_line(client: TestClient, signature: str | None, url: str,
                                                           body: dict[str, str]) -> None:
    if signature is None:
        signature = RequestValidator("other-token").compute_signature(url, PARAMS)
    elif signature == "sign":
        signature = RequestValidator(TOKEN).compute_signature(url, PARAMS)
    resp = await client.post("/voice/gather", data=urlencode(body), headers=form_headers(signature))
    assert resp.status == 403
    text = await resp.text()
    assert "\n" not in text.strip() and json.loads(text)["error"]["code"] == "bad_signature"
    assert TOKEN not in text


async def test_the_port_variant_is_accepted(client: TestClient) -> None:
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}:443/voice/gather", PARAMS)
    resp = await client.post("/voice/gather", data=urlencode(PARAMS), headers=form_headers(signature))
    assert resp.status == 200


async def test_json_bodies_are_checked_by_their_sha256(client: TestClient) -> None:
    body = '{"property": "value", "boolean": true}'
    digest = hashlib.sha256(body.encode()).hexdigest()
    assert digest == "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    path = f"/voice/gather?bodySHA256={digest}"
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, {})
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/json"}
    ok = await client.post(path, data=body, headers=headers)
    assert ok.status == 200 and await ok.json() == {"property": "value", "boolean": "True"}
    tampered = await client.post(path, data=body.replace(": ", ":  ", 1), headers=headers)
    assert tampered.status == 403


@pytest.mark.parametrize(("body", "query", "reason"), [
    ('{"CallSid": "CA1"}', "", "a JSON webhook is signed with bodySHA256 in its URL, and this one has none"),
    ("[" * 30_000 + "]" * 30_000, "?bodySHA256=0", "nests deeper than"),  # as deep as 64 KB allows
    ('{"n": ' + "1" * 5000 + "}", "?bodySHA256=0", "the body is not JSON we read"),
    ("{oops", "?bodySHA256=0", "the body is not JSON we read"),
])
async def test_json_bodies_that_cannot_be_checked_are_400(client: TestClient, body: str, query: str,
                                                          reason: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/voice/gather{query}", {})
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/json"}
    resp = await client.post(f"/voice/gather{query}", data=body, headers=headers)
    text = await resp.text()
    assert resp.status == 400 and "\n" not in text.strip(), text
    assert reason in json.loads(text)["error"]["message"]


@given(content_type=st.sampled_from([FORM, "application/json", "text/plain", ""]) | st.text(max_size=40),
       has_body_sha256=st.booleans(),
       body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
       | st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3)).map(lambda v: json.dumps(v).encode()))
def test_any_webhook_body_gives_parameters_or_a_precise_4xx(content_type: str, has_body_sha256: bool,
                                                            body: bytes) -> None:
    try:
        signed, params = parse_body(content_type, has_body_sha256, body)
    except ApiError as exc:
        assert exc.status in (400, 415) and "\n" not in exc.message
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    RequestValidator(TOKEN).validate(f"{PUBLIC}/voice/gather?bodySHA256=0", signed, "x")  # never raises


async def test_the_sha256_shared_key_variant(aiohttp_client) -> None:
    settings = TwilioSettings(auth_token=Secret(TOKEN), shared_key=Secret("shared-secret"), shared_key_id="wk1")
    client = await aiohttp_client(make_app(settings))
    url = f"{PUBLIC}/voice/gather"
    signature = RequestValidator("shared-secret").compute_signature(url, PARAMS, algorithm=HMAC_SHA256)
    good = form_headers(signature, **{"X-Twilio-Webhooks-Signature-Settings": "key=wk1,algorithm=HMAC_SHA256"})
    assert (await client.post("/voice/gather", data=urlencode(PARAMS), headers=good)).status == 200
    other_key = {**good, "X-Twilio-Webhooks-Signature-Settings": "key=wk2,algorithm=HMAC_SHA256"}
    assert (await client.post("/voice/gather", data=urlencode(PARAMS), headers=other_key)).status == 403
    # The same bytes signed with SHA-1 by the shared key are not a SHA-256 signature.
    sha1 = RequestValidator("shared-secret").compute_signature(url, PARAMS)
    wrong = {**good, "X-Twilio-Signature": sha1}
    assert (await client.post("/voice/gather", data=urlencode(PARAMS), headers=wrong)).status == 403


async def test_without_an_auth_token_the_door_is_closed(aiohttp_client) -> None:
    client = await aiohttp_client(make_app(TwilioSettings()))
    resp = await client.post("/voice/gather", data=urlencode(PARAMS), headers=form_headers("x"))
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "twilio_not_configured"


async def test_oversized_and_wrongly_typed_bodies(client: TestClient) -> None:
    big = urlencode({"Junk": "x" * MAX_WEBHOOK_BYTES})
    assert (await client.post("/voice/gather", data=big, headers=form_headers("x"))).status == 413
    text = {"X-Twilio-Signature": "x", "Content-Type": "text/plain"}
    assert (await client.post("/voice/gather", data="hi", headers=text)).status == 415


async def test_get_webhooks_sign_the_query(client: TestClient) -> None:
    path = "/voice/gather?" + urlencode(PARAMS)
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, {})
    resp = await client.get(path, headers={"X-Twilio-Signature": signature})
    assert resp.status == 200 and (await resp.json())["Digits"] == "1234"


def test_the_signed_url_behind_a_proxy() -> None:
    headers = {"Host": "10.0.0.5:8080", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.com"}
    request = make_mocked_request("POST", "/twilio/voice?x=1", headers=headers)
    assert signed_url(request, None, trust_forwarded=False) == "http://10.0.0.5:8080/twilio/voice?x=1"
    assert signed_url(request, None, trust_forwarded=True) == "https://voice.example.com/twilio/voice?x=1"
    assert signed_url(request, "https://pub.example.com/", trust_forwarded=True) == \
        "https://pub.example.com/twilio/voice?x=1"
