"""A real redis-server of the test's own on a free loopback port, in a temporary directory, that a test
can stop and start again (its append-only file keeps the data across, as a restarted Redis would)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

START_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = directory
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(START_S):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)  # polling for the server to listen, not timing behaviour
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


@asynccontextmanager
async def redis_server(directory: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(directory)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
