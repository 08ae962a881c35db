"""A model host for the downloader tests: serves zips and model files with HTTP Range, can cut transfers or 404."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web

RANGE_RE = re.compile(r"bytes=(\d+)-")
MFCC_CONF = "--use-energy=false\n--sample-frequency=16000\n--num-mel-bins=40\n"


def model_zip(top: str = "vosk-model-test", extra: dict[str, bytes] | None = None,
              rate: int = 16000) -> bytes:
    """A small fake Vosk model zip: conf/mfcc.conf, am/final.mdl (random, 200 KB), graph files."""
    rng = np.random.default_rng(7)
    files = {
        f"{top}/conf/mfcc.conf": MFCC_CONF.replace("16000", str(rate)).encode(),
        f"{top}/conf/model.conf": b"--min-active=200\n",
        f"{top}/am/final.mdl": rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes(),
        f"{top}/graph/words.txt": b"<eps> 0\nyes 1\nno 2\n",
        **(extra or {}),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def whisper_files() -> dict[str, bytes]:
    """The files of a fake CTranslate2 Whisper model: model.bin random (300 KB), the rest small."""
    rng = np.random.default_rng(8)
    return {
        "config.json": b'{"alignment_heads": [[2, 2]], "lang_ids": []}\n',
        "model.bin": rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes(),
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}\n',
        "vocabulary.txt": b"<|endoftext|>\nhello\nworld\n",
    }


@dataclass
class ModelHost:
    """Serves `files` at /NAME (NAME may hold slashes: a model's folder). `cut[name] = (n, times)`:
    the next `times` answers for that file send `n` body bytes and then drop the connection.
    `ignore_range` answers 200 to every Range."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut: dict[str, tuple[int, int]] = field(default_factory=dict)
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{name:.+}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        asked = request.headers.get("Range")
        self.requests.append((name, asked))
        data = self.files.get(name)
        if data is None:
            raise web.HTTPNotFound()
        start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
        match = RANGE_RE.fullmatch(asked or "")
        if match and not self.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = len(body)
        await resp.prepare(request)
        n, times = self.cut.get(name, (0, 0))
        if times:
            self.cut[name] = (n, times - 1)
            await resp.write(body[:n])
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp


@contextmanager
def serve_in_thread(host: ModelHost) -> Iterator[str]:
    """Run `host` on 127.0.0.1, port 0, in its own thread and loop, so synchronous code under
    test (the CLI, which calls asyncio.run) can download from it. Yields the base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(host.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
