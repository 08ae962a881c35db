"""One utterance recognised off the event loop while it is still being spoken.

Recognizers block, so chunks go to an executor in order; chunks that arrive while one is decoding are
batched, so a busy machine catches up instead of queueing tiny jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from adapter.speech.recognizer import Recognizer, Transcript


class SpeechTurn:
    def __init__(self, recognizer: Recognizer, rate: int, hints: Sequence[str] | None,
                 executor: Executor | None, on_partial: Callable[[str], None],
                 on_final: Callable[[Transcript], None]) -> None:
        self._recognizer = recognizer
        self._rate = rate
        self._hints = hints
        self._executor = executor
        self._on_partial = on_partial
        self._on_final = on_final
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run())
        self.finished = False

    def feed(self, data: bytes) -> None:
        if data and not self.finished:
            self._queue.put_nowait(data)

    def finish(self) -> None:
        """No more audio: the final transcript goes to `on_final` once decoded."""
        if not self.finished:
            self.finished = True
            self._queue.put_nowait(None)

    def cancel(self) -> None:
        self.finished = True
        self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stream = await loop.run_in_executor(self._executor, self._recognizer.open_stream, self._rate, self._hints)
        partial = ""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            data = b"".join(b for b in batch if b)
            if data:
                await loop.run_in_executor(self._executor, stream.accept, data)
                text = stream.partial()
                if text and text != partial:
                    partial = text
                    self._on_partial(text)
            if None in batch:
                self._on_final(await loop.run_in_executor(self._executor, stream.finish))
                return
