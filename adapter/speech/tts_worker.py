"""The process that owns pyttsx3 on espeak-ng, so synthesis never blocks the event loop.

pyttsx3's `runAndWait` blocks, its engine is not thread safe and espeak can only be initialised once
per process; a hung engine cannot be interrupted from another thread. So one child process owns one
engine, takes requests over a pipe, and is killed and started again when it dies or hangs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection

from adapter.audio.pcm import Pcm


class TtsError(RuntimeError):
    """Synthesis failed; the message is one line and safe to show."""


@dataclass(frozen=True, slots=True)
class Voice:
    id: str
    name: str
    languages: tuple[str, ...]


ESPEAK_RATE = 22050  # espeak-ng's fixed output rate (pyttsx3's driver assumes it too)


def _serve(requests: Connection, answers: Connection) -> None:
    """Child process: answer ("voices",) and ("say", text, voice, wpm, volume) until EOF.

    pyttsx3 initialises espeak-ng and lists its voices; synthesis then calls pyttsx3's espeak
    binding synchronously. Its own `save_to_file` + `runAndWait` loop polls every 10 ms and, in our
    trials, applied a new rate to the wrong utterance now and then; a direct synchronous call does not.
    """
    import ctypes

    import pyttsx3
    from pyttsx3.drivers import _espeak

    engine = pyttsx3.init("espeak")
    chunks: list[bytes] = []

    def collect(wav: object, numsamples: int, events: object) -> int:
        if numsamples > 0:
            chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0

    _espeak.SetSynthCallback(collect)
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return
        try:
            if request[0] == "voices":
                answers.send(("ok", [(v.id, v.name, tuple(v.languages or ())) for v in engine.getProperty("voices")]))
                continue
            _, text, voice, wpm, volume = request
            if _espeak.SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng could not select voice {voice!r}")
            _espeak.SetParameter(_espeak.RATE, wpm, 0)
            _espeak.SetParameter(_espeak.VOLUME, round(volume * 100), 0)
            chunks.clear()
            _espeak.Synth(text.encode(), flags=_espeak.ENDPAUSE | _espeak.CHARS_UTF8)
            _espeak.Synchronize()
            answers.send(("ok", (b"".join(chunks), ESPEAK_RATE)))
        except Exception as exc:  # reported to the parent as one line; the worker keeps serving
            answers.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))


class TtsWorker:
    """One synthesis process, used by one thread at a time, restarted after a crash or a hang."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.restarts = 0
        self._lock = threading.Lock()
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        with self._lock:
            self._start()

    def _start(self) -> None:
        # A fresh interpreter, not a fork: the parent runs an event loop and threads that a fork would
        # copy half-way, and multiprocessing's spawn would re-import the parent's main script.
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "adapter.speech.tts_worker", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._send, self._recv = Connection(to_child_w, readable=False), Connection(from_child_r, writable=False)

    def _stop(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
        self._send = self._recv = self._process = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _restart(self) -> None:
        self._stop()
        self._start()
        self.restarts += 1

    def _ensure_running(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        if self._process is not None:
            self.restarts += 1
        self._stop()
        self._start()

    def _call(self, request: tuple[object, ...]) -> object:
        """Send one request; a worker that died mid-request is restarted and asked once more."""
        with self._lock:
            for attempt in (1, 2):
                self._ensure_running()
                assert self._send is not None and self._recv is not None
                try:
                    self._send.send(request)
                    if not self._recv.poll(self.timeout_s):
                        self._restart()
                        raise TtsError(
                            f"speech synthesis took longer than {self.timeout_s:g} s; the worker was restarted")
                    status, value = self._recv.recv()
                    break
                except (EOFError, OSError):
                    self._restart()
                    if attempt == 2:
                        raise TtsError("the speech synthesis worker died twice in a row") from None
        if status != "ok":
            raise TtsError(f"speech synthesis failed: {value}")
        return value

    def voices(self) -> list[Voice]:
        return [Voice(id_, name, tuple(langs)) for id_, name, langs in self._call(("voices",))]

    def synthesize(self, text: str, voice: str, wpm: int, volume: float) -> Pcm:
        """Blocking: the PCM espeak-ng makes for `text`, at its own rate (22050 Hz)."""
        data, rate = self._call(("say", text, voice, int(wpm), float(volume)))
        return Pcm(data, rate)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
