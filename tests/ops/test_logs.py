"""The service log (issue 17): JSON lines, the call id on every line logged while handling a call,
whichever module logs it, and the level set by KORE_VOICE_LOG_LEVEL (or --log-level)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from serve_process import serving
from simulated_bot import SimulatedBot

from adapter.json_log import CallIds, call_context
from ops.live import instances, kiosk_call, local

log = logging.getLogger("adapter.test")


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str | None]] = []
        self.addFilter(CallIds())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), getattr(record, "call_id", None)))


async def test_a_calls_task_and_the_tasks_it_starts_name_the_call():
    kept = Kept()
    log.addHandler(kept)
    log.setLevel(logging.INFO)

    async def call() -> None:
        log.info("welcome")
        await asyncio.create_task(asyncio.to_thread(log.info, "recognized"))  # a task and a thread it starts
        log.info("bot said", extra={"call_id": "call-other"})  # a line naming its own call keeps it

    try:
        await asyncio.gather(asyncio.create_task(call(), context=call_context("call-1")),
                             asyncio.create_task(asyncio.to_thread(log.info, "another request")))
        log.info("after")
    finally:
        log.removeHandler(kept)
    assert sorted(kept.lines) == [("after", None), ("another request", None), ("bot said", "call-other"),
                                  ("recognized", "call-1"), ("welcome", "call-1")]


def lines(log_lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_lines]


async def test_every_line_of_a_call_names_it(bot: SimulatedBot):
    async with instances(1, KORE_VOICE_LOG_LEVEL="debug", **bot.env()) as (service,), aiohttp.ClientSession() as http:
        async with http.post(f"{local(service)}/v1/calls", json={"from": "+15551230000", "to": "+1555"}) as answer:
            rest = (await answer.json())["id"]
        async with http.post(f"{local(service)}/v1/calls/{rest}/turns", data={"Digits": "1"}) as answer:
            assert answer.status == 200
        async with http.delete(f"{local(service)}/v1/calls/{rest}") as answer:
            assert answer.status == 204
        kiosk = await kiosk_call(http, local(service))
        await kiosk.ws.send_json({"type": "stop"})
        await kiosk.closed_by_server()
    logged = lines(service.log)
    for call_id in (rest, kiosk.id):
        mentions = [line for line in logged if call_id in json.dumps({k: v for k, v in line.items() if k != "call_id"})]
        assert mentions and all(line.get("call_id") == call_id for line in mentions), mentions
        named = [line for line in logged if line.get("call_id") == call_id]
        assert {"aiohttp.access", "adapter.kore.client"} <= {line["logger"] for line in named}, named
    creations = [line for line in logged if line.get("path") == "/v1/calls"]
    assert [line.get("call_id") for line in creations] == [rest]  # the access line of the call it created
    assert any(line["level"] == "debug" for line in logged)


async def test_the_level_comes_from_the_settings_and_the_flag_wins():
    told_info = serving(args=("--log-level", "info"), KORE_VOICE_LOG_LEVEL="warning")
    async with serving(KORE_VOICE_LOG_LEVEL="warning") as quiet, told_info as told, aiohttp.ClientSession() as http:
        for service in (quiet, told):
            async with http.get(f"{local(service)}/healthz") as answer:
                assert answer.status == 200
    assert not [line for line in lines(quiet.log) if line["level"] in ("debug", "info")]
    assert any(line.get("path") == "/healthz" for line in lines(told.log))
