"""The app around the doors: health, readiness, metrics, the API key, JSON errors and logs, async bot
replies, and shutdown hanging up live calls. All in-process on 127.0.0.1 port 0."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from doors.conftest import API_KEY, door_settings, keys, running, say_wav, start_call, stub_kore, stub_settings
from prometheus_client.parser import text_string_to_metric_families

from adapter import server as server_module
from adapter.config import ConfigError
from adapter.json_log import JsonAccessLogger, JsonFormatter
from adapter.server import create_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus exposition as {(sample name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_health_and_readiness_name_what_is_up():
    async with running(door_settings()) as client:
        assert await (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await (await client.get("/readyz")).json()
        assert ready["ready"] is True
        assert ready["checks"]["recognizer"] == {"ok": True, "detail": "pocketsphinx"}
        assert ready["checks"]["synthesizer"]["ok"] and "en" in ready["checks"]["synthesizer"]["detail"]
        assert ready["checks"]["bot"]["detail"].startswith("embedded simulator at http://127.0.0.1:")


async def test_readiness_fails_while_the_bot_cannot_be_reached():
    async with running(stub_settings("http://127.0.0.1:9/chatbot/v2/webhook/st-gone")) as client:
        resp = await client.get("/readyz")
        ready = await resp.json()
        assert resp.status == 503 and ready["ready"] is False
        bot = ready["checks"]["bot"]
        assert bot["ok"] is False and bot["detail"].startswith("Kore.ai at http://127.0.0.1:9: ")
        assert (await client.get("/healthz")).status == 200


async def test_readiness_asks_the_bot_once_however_often_it_is_polled(monkeypatch):
    probes = []

    async def bot_host(request: web.Request) -> web.Response:
        probes.append(request.path)
        return web.Response(status=405)

    host = web.Application()
    host.router.add_route("*", "/{tail:.*}", bot_host)
    async with TestServer(host) as bot, running(stub_settings(str(bot.make_url("/chatbot/hooks/st-1")))) as client:
        answers = await asyncio.gather(*(client.get("/readyz") for _ in range(5)))
        assert [r.status for r in answers] == [200] * 5
        assert len(probes) == 1
        monkeypatch.setattr(server_module, "BOT_PROBE_TTL_S", 0.0)
        assert (await client.get("/readyz")).status == 200
        assert len(probes) == 2


async def test_metrics_count_calls_turns_errors_and_stage_latency(tmp_path: Path):
    async with running(door_settings()) as client:
        call = await start_call(client)
        await keys(client, call["id"], "1")
        wav = say_wav("check balance", tmp_path).read_bytes()  # no menu any more: whatever is heard goes to the bot
        await client.post(f"/v1/calls/{call['id']}/turns", data=wav, headers={"Content-Type": "audio/wav"})
        await client.post("/v1/calls/call-nope/turns", json={"digits": "1"})
        got = samples(await (await client.get("/metrics")).text())
        assert got[("kore_voice_calls_started_total", (("door", "rest"),))] == 1
        assert got[("kore_voice_calls_active", (("door", "rest"),))] == 1
        assert got[("kore_voice_turns_total", (("door", "rest"), ("input", "dtmf")))] == 1
        assert got[("kore_voice_request_errors_total", (("code", "unknown_call"),))] == 1
        assert got[("kore_voice_bot_failures_total", (("kind", "error"),))] == 0
        count = {stage: got[("kore_voice_stage_seconds_count", (("stage", stage),))]
                 for stage in ("decode", "recognise-wait", "recognise", "bot", "synthesis", "total")}
        assert count["decode"] == count["recognise"] == 1 and count["total"] == 3  # welcome and two turns
        assert count["recognise-wait"] >= 1  # the spoken turn's jobs waited (briefly) for a worker
        assert count["bot"] >= 2 and count["synthesis"] >= 2
        # the recognizer's thread queue: one job went through it, none is waiting now
        assert got[("kore_voice_asr_queue_wait_seconds_count", (("kind", "final"),))] >= 1
        assert got[("kore_voice_asr_job_seconds_count", ())] >= 1
        assert got[("kore_voice_asr_queue_depth", ())] == 0 and got[("kore_voice_asr_failures_total", ())] == 0
        await client.delete(f"/v1/calls/{call['id']}")
        got = samples(await (await client.get("/metrics")).text())
        assert got[("kore_voice_calls_active", (("door", "rest"),))] == 0


async def test_bot_failures_are_counted_by_kind():
    requests: list[dict] = []
    async with stub_kore(requests) as url, running(stub_settings(url)) as client:
        call = await start_call(client)
        assert (await keys(client, call["id"], "1")).status == 502
        assert (await keys(client, call["id"], "2")).status == 504
        assert (await keys(client, call["id"], "7")).status == 200  # the call went on
        got = samples(await (await client.get("/metrics")).text())
        assert got[("kore_voice_bot_failures_total", (("kind", "error"),))] == 1
        assert got[("kore_voice_bot_failures_total", (("kind", "timeout"),))] == 1
        assert got[("kore_voice_request_errors_total", (("code", "bot_error"),))] == 1


async def test_the_api_key_guards_the_v1_doors_only():
    async with running(door_settings(KORE_VOICE_API_KEY=API_KEY)) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {API_KEY}"}):
            resp = await client.post("/v1/calls", json={"from": "+1", "to": "+2"}, headers=headers)
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await resp.json())["error"]["code"] == "unauthorized"
        call = await start_call(client, Authorization=f"Bearer {API_KEY}")
        assert (await keys(client, call["id"], "1", Authorization=f"bearer {API_KEY}")).status == 200
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status == 200


async def test_every_error_is_one_json_line():
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug\nover two lines")

    app = create_app(door_settings())
    app.router.add_get("/boom", boom)  # a route that fails as a bug would
    async with TestClient(TestServer(app)) as client:
        for method, path, status, code in [("GET", "/nowhere", 404, "not_found"),
                                           ("GET", "/v1/calls", 405, "method_not_allowed"),
                                           ("GET", "/boom", 500, "internal")]:
            resp = await client.request(method, path)
            text = await resp.text()
            assert resp.status == status and "\n" not in text and "bug" not in text
            assert (await resp.json())["error"]["code"] == code
        assert "POST" in (await client.get("/v1/calls")).headers["Allow"]


async def test_the_access_log_is_json_without_headers_or_tokens(caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with running(door_settings(KORE_VOICE_API_KEY=API_KEY), access_log_class=JsonAccessLogger) as client:
        await client.post("/v1/calls", json={}, headers={"Authorization": f"Bearer {API_KEY}"})
        await client.get("/healthz")
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"path": "/v1/calls", "status": 400' in line for line in lines)
    assert all(API_KEY not in line and "Authorization" not in line for line in lines)


async def test_async_bot_replies_reach_their_call_and_the_token_is_not_logged(unused_tcp_port: int, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    token = "callback-token-0123456789"
    settings = door_settings(KORE_MODE="async", KORE_CALLBACK_TOKEN=token, KORE_VOICE_PORT=str(unused_tcp_port))
    async with running(settings, port=unused_tcp_port, access_log_class=JsonAccessLogger) as client:
        call = await start_call(client)
        assert call["welcome"]["texts"] == ["Welcome to Demo Bank.", "How can I help you today?"]
        answer = await (await keys(client, call["id"], "1")).json()
        assert "$2,450.18" in answer["bot"]["texts"][0]
        wrong = await client.post("/kore/callback/not-the-token", json={})
        assert wrong.status == 401
    paths = [r.path for r in caplog.records if r.name == "aiohttp.access"]
    callbacks = [path for path in paths if path.startswith("/kore/")]  # the bot's replies, the wrong token
    assert len(callbacks) >= 3 and set(callbacks) == {"/kore/callback/***"}
    assert all(token not in line for line in caplog.text.splitlines())


async def test_stopping_the_service_hangs_up_live_calls():
    requests: list[dict] = []
    async with stub_kore(requests) as url:
        async with running(stub_settings(url)) as client:
            await start_call(client)
            await start_call(client)
        closures = [r for r in requests if r["message"]["val"] == "SESSION_CLOSURE"]
        assert len(closures) == 2


def test_async_mode_with_the_embedded_bot_needs_a_fixed_port():
    with pytest.raises(ConfigError, match="KORE_VOICE_PORT"):
        create_app(door_settings(KORE_MODE="async", KORE_CALLBACK_TOKEN="t" * 24, KORE_VOICE_PORT="0"))


async def test_no_log_line_or_error_answer_holds_a_secret_on_any_route(caplog):
    """Path tokens (matched by a route or not), `?key=`, and credentials quoted by an error stay out
    of access lines, the middleware's own lines and the answers (issue 12 item 8)."""
    caplog.set_level(logging.INFO)
    token, jwt = "callback-token-0123456789", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"

    async def bug(request: web.Request) -> web.Response:
        raise RuntimeError(f"upstream refused Authorization: Bearer {jwt}")

    async def bot_error(request: web.Request) -> web.Response:
        raise web.HTTPBadGateway(text=f"the bot at http://10.0.0.5/hook?token={token} said: Bearer {jwt}")

    app = create_app(door_settings(KORE_VOICE_API_KEY=API_KEY))
    app.router.add_get("/kore/callback/{token}/bug", bug)
    app.router.add_get("/bot", bot_error)
    server = TestServer(app)
    await server.start_server(access_log_class=JsonAccessLogger)
    async with TestClient(server) as client:
        answers = [await client.get(path) for path in (
            f"/kore/callback/{token}/bug", "/bot", f"/kore/callback/{token}/not/a/route",
            f"/twilio/audio/{token}/nope", f"/v1/stream?key={API_KEY}", f"/v1/calls?key={API_KEY}")]
        bodies = [await answer.text() for answer in answers]
    assert [answer.status for answer in answers][:3] == [500, 502, 404]
    assert not any(secret in body for body in bodies for secret in (token, jwt, API_KEY)), bodies
    assert "Bearer ***" in bodies[1] and "token=***" in bodies[1]
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any("/kore/callback/***/bug" in line for line in lines)
    assert not any(secret in line for line in lines for secret in (token, jwt, API_KEY))
    served = [r.getMessage() for r in caplog.records if r.name in ("aiohttp.access", "adapter.server")]
    assert not any(token in message for message in served), served  # redacted at the source too
