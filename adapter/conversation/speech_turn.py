"""One utterance recognised off the event loop, through the process's fair recognizer pool.

Engines that decode a finished utterance (Whisper, PocketSphinx) are handed the audio once, at its end;
or earlier, at a short pause (`speculate`): when the caller says nothing more, that decode is the
answer and the reply can start as soon as the end-of-speech silence has passed, instead of a decode
later. A word after the pause makes the early decode void (it is dropped if it has not started).
Streaming engines (Vosk) take the audio as it comes, in batches when it arrives faster than they
decode, and give partial text; a caller who outruns the recognizer by `MAX_QUEUED_S` of audio gets
nothing heard for that utterance rather than a queue that grows without bound.

Whatever goes wrong in the recognizer, the utterance ends with a transcript: `SILENCE` (heard as
nothing, a no-match), never a caller left waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from adapter.audio.pcm import Pcm
from adapter.speech.recognizer import SILENCE, Recognizer, Transcript
from adapter.speech.recognizer_pool import RecognizerPool

log = logging.getLogger(__name__)

#: audio a streaming engine may have waiting, in seconds; more means the caller outruns it
MAX_QUEUED_S = 10.0


class SpeechTurn:
    def __init__(self, recognizer: Recognizer, pool: RecognizerPool, call: str, rate: int,
                 hints: Sequence[str] | None, on_partial: Callable[[str], None],
                 on_final: Callable[[Transcript], None]) -> None:
        self._recognizer = recognizer
        self._pool = pool
        self._call = call
        self._rate = rate
        self._hints = tuple(hints) if hints else None
        self._on_partial = on_partial
        self._on_final = on_final
        self.finished = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._audio = bytearray()
        self._silent_ms = 0
        self._guess: tuple[asyncio.Task[Transcript], int, int] | None = None  # (decode, bytes, silent_ms)
        self._queue: asyncio.Queue[bytes | None] | None = None
        self._queued = 0
        if not recognizer.whole_utterance:
            self._queue = asyncio.Queue()
            self._spawn(self._stream())

    def feed(self, data: bytes, silent_ms: int = 0) -> None:
        """More of the utterance; `silent_ms` is the silence it now ends with (voiced audio: 0)."""
        if not data or self.finished:
            return
        if self._queue is None:
            self._audio += data
            self._silent_ms = silent_ms
            if self._guess is not None and not self._guess_holds():
                self._guess[0].cancel()  # the caller went on: that early decode is void
                self._guess = None
            return
        self._queued += len(data)
        if self._queued > MAX_QUEUED_S * 2 * self._rate:
            log.warning("call %s: audio comes faster than the recognizer takes it; this utterance is dropped",
                        self._call)
            self._end(SILENCE)
            return
        self._queue.put_nowait(data)

    def speculate(self) -> None:
        """Decode what has been said so far, in case the caller has finished (whole-utterance engines;
        the pool runs it only on a worker nobody else needs)."""
        if self._queue is not None or self.finished or not self._audio or self._guess is not None:
            return
        decode = asyncio.create_task(self._decode(self._said(), speculative=True))  # what was said until now
        self._guess = (decode, len(self._audio), self._silent_ms)

    def finish(self) -> None:
        """No more audio: the final transcript goes to `on_final` once decoded."""
        if self.finished:
            return
        self.finished = True
        if self._queue is not None:
            self._queue.put_nowait(None)
        else:
            self._spawn(self._conclude())

    def cancel(self) -> None:
        self.finished = True
        for task in list(self._tasks):
            task.cancel()
        if self._guess is not None:
            self._guess[0].cancel()
            self._guess = None

    # --- inside ------------------------------------------------------------------------------------

    def _spawn(self, work: object) -> None:
        task = asyncio.create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _guess_holds(self) -> bool:
        """Whether all audio since the early decode was silence (so it heard the whole utterance)."""
        assert self._guess is not None
        _, size, silent_ms = self._guess
        added_ms = (len(self._audio) - size) * 1000 // (2 * self._rate)
        return self._silent_ms - silent_ms >= added_ms

    def _said(self) -> Pcm:
        return Pcm(bytes(self._audio), self._rate)

    async def _decode(self, pcm: Pcm, speculative: bool = False) -> Transcript:
        return await self._pool.run(self._call, self._recognizer.transcribe, pcm, self._hints,
                                    speculative=speculative)

    async def _conclude(self) -> None:
        guess = self._guess[0] if self._guess is not None and self._guess_holds() else None
        if guess is not None:
            self._pool.promote(self._call)  # if it still waits for a spare worker, it waits no more
            await asyncio.wait([guess])
        if guess is not None and not guess.cancelled() and guess.exception() is None:
            self._on_final(guess.result())
            return
        try:
            transcript = await self._decode(self._said())
        except Exception as exc:  # noqa: BLE001 - heard as nothing; the call goes on
            transcript = self._failed(exc)
        self._on_final(transcript)

    def _failed(self, exc: Exception) -> Transcript:
        """Nothing heard: the recognizer failed (the pool logged it) or the caller outran it."""
        log.warning("call %s: nothing heard, the recognizer failed: %s", self._call, exc)
        return SILENCE

    def _end(self, transcript: Transcript) -> None:
        self.cancel()
        self._on_final(transcript)

    async def _stream(self) -> None:
        assert self._queue is not None
        run = self._pool.run
        try:
            stream = await run(self._call, self._recognizer.open_stream, self._rate, self._hints)
            partial = ""
            while True:
                batch = [await self._queue.get()]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                data = b"".join(b for b in batch if b)
                self._queued -= len(data)
                if data:
                    await run(self._call, stream.accept, data)
                    text = stream.partial()
                    if text and text != partial:
                        partial = text
                        self._on_partial(text)
                if None in batch:
                    transcript = await run(self._call, stream.finish)
                    break
        except Exception as exc:  # noqa: BLE001 - heard as nothing; the call goes on
            transcript = self._failed(exc)
        self._on_final(transcript)
