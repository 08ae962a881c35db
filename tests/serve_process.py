"""The real `kore-voice serve` in a subprocess on loopback: for what only the command sets up (its
connection cap, its logging, its open-file limit) and for limits a test must not impose on itself."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from raw_http import ANSWER_S


@dataclass
class Service:
    port: int
    banner: str  # the line it printed once serving
    process: asyncio.subprocess.Process
    log: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        if self.process.returncode is None:  # a test may have stopped it already
            self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), ANSWER_S)


def service_env(**settings: str) -> dict[str, str]:
    """The test environment without the developer's service settings, plus `settings`; a stopped service
    closes its live calls at once (no KORE_VOICE_DRAIN_S) unless a test says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KORE_", "TWILIO_"))}
    return {**env, "KORE_VOICE_ASR": "pocketsphinx", "KORE_VOICE_ASR_PROCESSES": "0", "KORE_VOICE_DRAIN_S": "0",
            **settings}


@asynccontextmanager
async def serving(open_files: int | None = None, args: tuple[str, ...] = (), **settings: str) -> AsyncIterator[Service]:
    """`kore-voice serve --port 0 *args` until it says where it serves; `open_files` caps its RLIMIT_NOFILE."""

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("kore-voice")), "serve", "--port", "0", *args, env=service_env(**settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=limit)
    assert process.stdout is not None and process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        port = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        assert port, line
        service = Service(int(port[1]), line, process)

        async def read_log(stream: asyncio.StreamReader) -> None:
            async for raw in stream:
                service.log.append(raw.decode(errors="replace"))

        reading = asyncio.create_task(read_log(process.stderr))
        yield service
        await service.stop()
        await reading
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


