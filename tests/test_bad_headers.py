"""Headers holding bytes that are not UTF-8 (raw 0x80-0xff) get one 400 JSON line on every route,
never a 500 from whichever door happens to encode them (issue 12 item 10)."""

from __future__ import annotations

import pytest
from doors.conftest import API_KEY, door_settings, running
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from raw_http import exchange, request
from serve_process import serving

HEADERS = [b"Authorization: Bearer \xff\xfe" + API_KEY.encode(), b"Content-Type: application/json; charset=\xe9",
           b"Accept: audio/\x80", b"X-Twilio-Signature: \xc3(abc", b"X-Anything: caf\xe9"]
ROUTES = [("POST", "/v1/calls"), ("POST", "/v1/calls/call-x/turns"), ("GET", "/v1/stream"), ("POST", "/twilio/voice"),
          ("POST", "/kore/callback/callback-token-0123456789"), ("GET", "/healthz"), ("GET", "/nowhere")]
SETTINGS = {"KORE_VOICE_API_KEY": API_KEY, "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t" * 32,
            "KORE_MODE": "async", "KORE_CALLBACK_TOKEN": "callback-token-0123456789"}


@pytest.fixture
async def port(unused_tcp_port: int) -> int:
    async with running(door_settings(**SETTINGS, KORE_VOICE_PORT=str(unused_tcp_port)), port=unused_tcp_port):
        yield unused_tcp_port


async def test_a_header_that_is_not_utf8_is_a_400_on_every_route(port: int) -> None:
    for header in HEADERS:
        name = header.partition(b":")[0].decode()
        for method, path in ROUTES:
            answer = await exchange(port, request(method, path, header, body=b"{}"))
            assert answer.status == 400, (header, path, answer)
            assert answer.error() == {"code": "bad_header",
                                      "message": f"the {name} header holds bytes that are not UTF-8"}


async def test_utf8_beyond_ascii_is_no_reason_to_refuse(port: int) -> None:
    answer = await exchange(port, request("GET", "/healthz", "X-Caller-Name: Zoë".encode()))
    assert answer.status == 200


# Any bytes a header value can carry on the wire (no CR, LF or NUL, which end or break the line).
VALUES = st.binary(max_size=40).map(lambda v: v.translate(None, b"\r\n\x00").strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(name="Authorization", value=b"Bearer \xff", route=("POST", "/v1/calls"))  # a 500 before the fix
@given(name=st.sampled_from(["Authorization", "Content-Type", "Accept", "X-Twilio-Signature", "Cookie"]),
       value=VALUES, route=st.sampled_from(ROUTES))
async def test_no_header_value_makes_the_server_fail(port: int, name: str, value: bytes,
                                                     route: tuple[str, str]) -> None:
    """Control characters are refused by aiohttp's parser itself (a plain-text 400); the rest reach us."""
    answer = await exchange(port, request(route[0], route[1], name.encode() + b": " + value))
    assert answer.status < 500, answer
    if answer.status >= 400 and answer.body.startswith(b"{"):
        assert answer.error()["code"]


MALFORMED = [
    (request("GET", "/healthz", b"X-Pad: a\x01b"), "malformed request: Invalid header value char"),
    (b"GET /kore/callback/callback-token-0123456789 HTTP/9.9\r\n\r\n", "malformed request: Bad status line"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "malformed request: "),  # TLS to an HTTP port
]


async def test_a_request_aiohttp_cannot_parse_is_one_json_line_and_one_log_line():
    """aiohttp answers these itself, before any middleware: `serve` makes them JSON like the rest."""
    async with serving() as service:
        for raw, reason in MALFORMED:
            answer = await exchange(service.port, raw)
            assert answer.status == 400, answer
            assert answer.error()["code"] == "bad_request"
            assert answer.error()["message"].startswith(reason), answer
    assert not any("Traceback" in line or "callback-token-0123456789" in line for line in service.log), service.log
    assert sum("malformed request from" in line for line in service.log) == 2, service.log  # TLS: debug only
