"""What a misbehaving bot cannot do to us: flood us through Retry-After, fill memory with a huge answer,
or get our token or its own address into what a caller sees. Real HTTP on loopback, fake time."""

from __future__ import annotations

import pytest
from aiohttp import web

from adapter.calls.info import CallInfo
from adapter.kore.client import RETRY_BASE_S, RETRY_MAX_COUNT
from adapter.kore.errors import KoreBadResponse, KoreRateLimited, KoreServerError

CALL = CallInfo("call-0001", caller="+14155550100")


@pytest.mark.parametrize("retry_after", ["0", "nan", "-3", "garbage", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_retry_after_from_the_bot_never_floods_it(stub_server, make_client, fake_time, retry_after):
    requests = []

    async def busy(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.json_response({"errors": [{"msg": "Too Many requests", "code": 429}]}, status=429,
                                 headers={"Retry-After": retry_after})

    url = await stub_server(busy)
    with pytest.raises(KoreRateLimited):
        await make_client(url).send_text(CALL, "hello")

    assert 1 <= len(requests) <= RETRY_MAX_COUNT + 1
    assert all(delay >= RETRY_BASE_S for delay in fake_time.slept)
    assert sum(fake_time.slept) < 12


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_answer_over_the_size_cap_is_a_bad_response(stub_server, make_client, chunked):
    big = b'{"data": [{"type": "text", "val": "' + b"x" * 20_000 + b'"}], "_v": "v2"}'

    async def huge(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=big, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for start in range(0, len(big), 1000):
            await resp.write(big[start:start + 1000])
        await resp.write_eof()
        return resp

    url = await stub_server(huge)
    with pytest.raises(KoreBadResponse, match="over the 4096 byte limit") as info:
        await make_client(url, max_answer_bytes=4096).send_text(CALL, "hello")
    assert info.value.public == "the bot's answer could not be read"


async def test_a_bot_echoing_our_token_gets_it_redacted_and_callers_see_a_generic_text(stub_server, make_client):
    async def echo(request: web.Request) -> web.Response:
        msg = f"upstream 10.1.2.3 refused: Authorization: {request.headers['Authorization']}"
        return web.json_response({"errors": [{"msg": msg, "code": 500}]}, status=500)

    url = await stub_server(echo)
    with pytest.raises(KoreServerError) as info:
        await make_client(url).send_text(CALL, "hello")

    error = info.value
    assert "eyJ" not in str(error) and "eyJ" not in error.detail and "eyJ" not in error.reason
    assert "Authorization: bearer [redacted]" in error.detail
    assert error.public == "the bot could not answer"
    assert "10.1.2.3" not in error.public and "127.0.0.1" not in error.public
