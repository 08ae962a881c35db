"""A recogniser run in worker processes, for engines that hold the GIL while they decode.

PocketSphinx's decoder keeps the GIL for the whole decode: one utterance stalled the service's event
loop for ~430 ms (measured), so four calls at once waited on each other's recognition in every
stage. Worker processes decode in parallel and leave the loop free. Each worker is a fresh
interpreter (spawn: no fork of a process running an event loop) that loads the engine once.
Streams collect their audio and decode it at `finish`, as the PocketSphinx stream does anyway.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, wait

from adapter.audio.pcm import Pcm
from adapter.speech.engines import load_recognizer
from adapter.speech.recognizer import SILENCE, Recognizer, RecognizerStream, Transcript
from adapter.speech.recognizer_pool import run_as, under_load
from adapter.speech.settings import AsrSettings

_engine: Recognizer | None = None  # in a worker: its own recogniser
_pools: dict[tuple[AsrSettings, int], ProcessRecognizer] = {}
_starting = threading.Lock()


def _load(settings: AsrSettings) -> None:
    global _engine
    _engine = load_recognizer(settings)


def _transcribe(pcm: Pcm, hints: tuple[str, ...] | None, loaded: bool = False) -> Transcript:
    """In a worker: the engine's transcript, decoded as under load when the caller's job was."""
    assert _engine is not None
    return run_as(loaded, _engine.transcribe, pcm, hints)


class ProcessRecognizer(Recognizer):
    """`engine`'s recognition in `processes` workers; blocking calls wait without holding the GIL."""

    def __init__(self, settings: AsrSettings, engine: Recognizer, processes: int) -> None:
        self.name = engine.name
        self.sample_rate = engine.sample_rate
        self.whole_utterance = True
        # A worker decodes one utterance at a time, on its share of the cores.
        share = settings.whisper_threads or max(1, (os.cpu_count() or 1) // processes)
        one = dataclasses.replace(settings, workers=1, whisper_threads=share)
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_load, initargs=(one,))
        # Start every worker now (import, model load), not on the first callers' turns.
        wait([self._pool.submit(_transcribe, Pcm(b"", self.sample_rate), None) for _ in range(processes)])

    def transcribe(self, pcm: Pcm, hints: Sequence[str] | None = None) -> Transcript:
        if not pcm.data:
            return SILENCE
        return self._pool.submit(_transcribe, pcm, tuple(hints) if hints else None, under_load()).result()

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return _CollectingStream(self, rate, hints)


def process_recognizer(settings: AsrSettings, processes: int) -> ProcessRecognizer:
    """The process's pool for `settings`, started on the first call (seconds: each worker loads the
    engine) and kept, like `load_recognizer`'s engine, until the interpreter exits."""
    with _starting:
        if (settings, processes) not in _pools:
            _pools[settings, processes] = ProcessRecognizer(settings, load_recognizer(settings), processes)
        return _pools[settings, processes]


class _CollectingStream(RecognizerStream):
    """The utterance at the engine's rate, decoded by a worker at `finish`."""

    def __init__(self, recognizer: ProcessRecognizer, rate: int, hints: Sequence[str] | None) -> None:
        super().__init__(rate, recognizer.sample_rate)
        self._recognizer = recognizer
        self._hints = hints
        self._audio = bytearray()

    def _feed(self, data: bytes) -> None:
        self._audio += data

    def _final(self) -> Transcript:
        return self._recognizer.transcribe(Pcm(bytes(self._audio), self._recognizer.sample_rate), self._hints)
