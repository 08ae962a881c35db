"""Kore.ai's Webhook channel in async mode (specs §5.1), as the test's own fake on loopback: every POST to
the webhook is acknowledged at once (`{"status": "ok", "_v": "v2", "traceId"}`) and recorded; the bot's
messages are the test's to deliver, as Kore POSTs them to POST_URL, to whichever instance it likes, in
whatever order, as often as it likes (Kore documents no ordering, retry or duplicate policy: §5.2)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_ID = "st-async-bot"
CALLBACK_TOKEN = "callback-token-0123456789abcdef"
#: when the fake bot's messages were created (createdOn); each message `n` is `n` ms after it
EPOCH = 1_790_000_000.0


class AsyncKore:
    def __init__(self, url: str, asked: list[dict[str, Any]]) -> None:
        self.url = url
        self.asked = asked  # the webhook bodies the service sent, oldest first

    def env(self) -> dict[str, str]:
        """The service in async mode aimed at this channel, with its POST_URL token."""
        return {"KORE_WEBHOOK_URL": self.url, "KORE_CLIENT_ID": "cs-async-test", "KORE_CLIENT_SECRET": "s" * 32,
                "KORE_MODE": "async", "KORE_CALLBACK_TOKEN": CALLBACK_TOKEN}

    def texts_from(self, user_id: str) -> list[str]:
        return [b["message"]["val"] for b in self.asked if b.get("from", {}).get("id") == user_id]


def said(user_id: str, n: int, text: str) -> dict[str, Any]:
    """The bot's `n`th message of the test, one callback as Kore's v2 sends it (one message per POST)."""
    created = datetime.fromtimestamp(EPOCH + n / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"to": user_id, "from": BOT_ID, "_v": "v2",
            "data": [{"type": "text", "val": text, "createdOn": created, "messageId": f"ms-{n}"}]}


def end_of_task(user_id: str) -> dict[str, Any]:
    """The separate end-of-task message of async mode (§5.1)."""
    return {"to": user_id, "from": BOT_ID, "endOfTask": True, "endReason": "Fulfilled",
            "completedTaskName": "show balance"}


@asynccontextmanager
async def async_kore() -> AsyncIterator[AsyncKore]:
    asked: list[dict[str, Any]] = []

    async def webhook(request: web.Request) -> web.Response:
        asked.append(await request.json())
        return web.json_response({"status": "ok", "_v": "v2", "traceId": f"RTM-TRACE-{uuid.uuid4().hex[:10]}"})

    app = web.Application()
    app.router.add_post(f"/chatbot/v2/webhook/{BOT_ID}", webhook)
    async with TestServer(app, host="127.0.0.1") as server:
        yield AsyncKore(str(server.make_url(f"/chatbot/v2/webhook/{BOT_ID}")), asked)
