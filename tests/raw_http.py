"""HTTP spoken over a bare socket, for requests no client library would send (bytes that are not
UTF-8 in a header, a head or body sent halfway) and to see exactly what the server answers."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

#: how long a test waits for an answer the server owes it (a bound on a bug, not a pace)
ANSWER_S = 20.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def error(self) -> dict[str, Any]:
        """The one-line JSON error body's `error` object."""
        assert self.body.count(b"\n") <= 1, self.body
        return json.loads(self.body)["error"]


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), body)


async def exchange(port: int, request: bytes) -> Answer:
    """Send `request` whole on a new connection; the answer read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return parse(await asyncio.wait_for(reader.read(), ANSWER_S))
    finally:
        writer.close()


def request(method: str, path: str, *headers: bytes, body: bytes = b"") -> bytes:
    """An HTTP/1.1 request that asks the server to close after answering."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers,
             f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
