"""Where an utterance starts and ends in live audio, from voice activity on 20 ms frames.

Time here is audio time (frames counted), not wall time, so the same audio always cuts the same way.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from adapter.audio.vad import VoiceActivity

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    silence_ms: int = 500  # trailing silence that ends an utterance
    onset_ms: int = 180  # voiced audio within the onset window that starts one (webrtcvad's own
    onset_window_ms: int = 300  # hangover makes a 50 ms click look like 120 ms of voice)
    preroll_ms: int = 300  # audio kept from before the onset so the first word is whole
    max_utterance_s: float = 15.0
    aggressiveness: int = 2


@dataclass(frozen=True, slots=True)
class Step:
    """What one chunk of audio did: the utterance audio it carried, and whether it started/ended one."""

    speech: bytes = b""
    started: bool = False
    ended: bool = False
    reason: str = ""  # "silence" or "max_length" when ended
    voiced_ms: int = 0  # voiced audio in the current utterance so far
    silent_ms: int = 0  # the silence the utterance so far ends with (0 after voiced audio, or outside one)
    at_s: float = 0.0  # audio time of the start or end decision (or of the chunk's end)


class Endpointer:
    """Feed chunks of 16-bit PCM at `rate`; each call says what they did to the utterance."""

    def __init__(self, rate: int, settings: EndpointSettings = EndpointSettings()) -> None:
        self.rate = rate
        self.settings = settings
        self._vad = VoiceActivity(rate, settings.aggressiveness, FRAME_MS)
        self._frame_bytes = self._vad.frame_bytes
        self._pending = b""
        self._window: deque[tuple[bytes, bool]] = deque(maxlen=settings.onset_window_ms // FRAME_MS)
        self._preroll: deque[bytes] = deque(maxlen=settings.preroll_ms // FRAME_MS)
        self.in_speech = False
        self._silent_frames = 0
        self._frames = 0
        self._voiced = 0
        self.frames_seen = 0

    def reset(self) -> None:
        """Forget any utterance in progress (e.g. after keys won over speech)."""
        self.in_speech = False
        self._window.clear()
        self._preroll.clear()
        self._silent_frames = self._frames = self._voiced = 0

    @property
    def position_s(self) -> float:
        """Audio time consumed so far."""
        return self.frames_seen * FRAME_MS / 1000

    def feed(self, chunk: bytes) -> Step:
        self._pending += chunk
        speech: list[bytes] = []
        started = ended = False
        reason = ""
        at_s = 0.0
        s = self.settings
        while len(self._pending) >= self._frame_bytes and not ended:
            frame, self._pending = self._pending[:self._frame_bytes], self._pending[self._frame_bytes:]
            voiced = self._vad.is_speech(frame)
            self.frames_seen += 1
            if not self.in_speech:
                if len(self._window) == self._window.maxlen:
                    self._preroll.append(self._window[0][0])
                self._window.append((frame, voiced))
                if sum(v for _, v in self._window) * FRAME_MS < s.onset_ms:
                    continue
                self.in_speech, started = True, True
                at_s = self.position_s
                speech.extend(self._preroll)
                speech.extend(f for f, _ in self._window)
                self._frames = len(self._preroll) + len(self._window)
                self._voiced = sum(v for _, v in self._window)
                self._silent_frames = 0
                self._window.clear()
                self._preroll.clear()
                continue
            speech.append(frame)
            self._frames += 1
            self._voiced += voiced
            self._silent_frames = 0 if voiced else self._silent_frames + 1
            if self._silent_frames * FRAME_MS >= s.silence_ms:
                ended, reason, at_s = True, "silence", self.position_s
            elif self._frames * FRAME_MS >= s.max_utterance_s * 1000:
                ended, reason, at_s = True, "max_length", self.position_s
        voiced_ms = self._voiced * FRAME_MS
        silent_ms = self._silent_frames * FRAME_MS if self.in_speech else 0
        if ended:
            self.in_speech = False
            self._voiced = self._frames = self._silent_frames = 0
        return Step(b"".join(speech), started, ended, reason, voiced_ms=voiced_ms, silent_ms=silent_ms,
                    at_s=at_s if started or ended else self.position_s)
