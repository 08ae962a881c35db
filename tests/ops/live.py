"""What the operations tests do to running instances: start several at once, open a kiosk call over the
stream door (through a balancer or not), read an instance's readiness, and wait for it to drain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from raw_http import ANSWER_S
from serve_process import Service, serving


@asynccontextmanager
async def instances(count: int, **settings: str) -> AsyncIterator[list[Service]]:
    """`count` `kore-voice serve` processes with `settings`, started side by side."""
    async with AsyncExitStack() as stack:
        yield list(await asyncio.gather(*(stack.enter_async_context(serving(**settings)) for _ in range(count))))


def local(service: Service) -> str:
    return f"http://127.0.0.1:{service.port}"


@dataclass
class KioskCall:
    """A caller on the kiosk stream door: keys in, the bot's texts out."""

    ws: aiohttp.ClientWebSocketResponse
    id: str
    welcome: list[str]

    async def next(self, kind: str) -> dict[str, Any]:
        """The next text message of type `kind` (others and prompt audio skipped)."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), ANSWER_S)
            assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), message
            if message.type == aiohttp.WSMsgType.TEXT and (event := json.loads(message.data))["type"] == kind:
                return event

    async def press(self, digit: str) -> list[str]:
        """Press a key; the bot's texts in answer."""
        await self.ws.send_json({"type": "dtmf", "digit": digit})
        return (await self.next("bot"))["texts"]

    async def closed_by_server(self) -> aiohttp.WSMessage:
        """The first message that is not text or audio: the server's close."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), ANSWER_S)
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return message


async def kiosk_call(http: aiohttp.ClientSession, base: str) -> KioskCall:
    """A call on `base`'s stream door, past the bot's welcome."""
    ws = await http.ws_connect(f"{base}/v1/stream".replace("http", "ws", 1))
    await ws.send_json({"type": "start", "from": "+15551230000", "to": "+15559870000", "format": "ulaw"})
    call = KioskCall(ws, "", [])
    call.id = (await call.next("started"))["id"]
    call.welcome = (await call.next("bot"))["texts"]
    return call


async def readiness(http: aiohttp.ClientSession, service: Service) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{local(service)}/readyz") as answer:
        return answer.status, await answer.json()


async def draining(http: aiohttp.ClientSession, service: Service) -> dict[str, Any]:
    """`service`'s readiness once it has taken a stop signal (it fails, on `calls`)."""

    async def poll() -> dict[str, Any]:
        while True:
            status, ready = await readiness(http, service)
            if status == 503 and not ready["checks"]["calls"]["ok"]:
                return ready
            await asyncio.sleep(0.05)  # the signal is handled between two polls

    return await asyncio.wait_for(poll(), ANSWER_S)


async def exit_status(service: Service) -> int:
    return await asyncio.wait_for(service.process.wait(), ANSWER_S)
