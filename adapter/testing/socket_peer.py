"""A phone system's peer over a WebSocket (Twilio Media Streams, Vonage): the socket read into the
timeline until it closes, its close code and reason kept, echoes sent from callbacks."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from adapter.doors.pacer import FrameFormat
from adapter.testing.line_peer import LinePeer


class SocketPeer(LinePeer):
    """A subclass reads the door's messages in `_text` (parsed JSON) and `_binary`, and connects with
    `_connect` in its `__aenter__`."""

    def __init__(self, fmt: FrameFormat) -> None:
        super().__init__(fmt)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    async def _connect(self, session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
        self.ws = await session.ws_connect(url)
        self._start(self._read())
        return self.ws

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        if self.ws is not None:
            await self.ws.close()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def _open(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def _send_later(self, message: dict[str, Any]) -> bool:
        """`message` sent from a callback; False when the socket is gone."""
        if not self._open():
            return False
        assert self.ws is not None
        self._spawn(self.ws.send_str(json.dumps(message)))
        return True

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive()
            now = time.monotonic()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._text(json.loads(msg.data), now)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._binary(msg.data, now)
            else:
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    self.close_reason = msg.extra or ""
                await self.ws.close()
                self.close_code = self.ws.close_code
                self._notify()
                return
            self._notify()

    def _text(self, message: dict[str, Any], now: float) -> None:
        raise NotImplementedError

    def _binary(self, data: bytes, now: float) -> None:
        raise NotImplementedError
