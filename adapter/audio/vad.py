"""Voice activity with WebRTC's VAD on 10/20/30 ms frames: flags, speech segments, silence trimming."""

from __future__ import annotations

import webrtcvad

from adapter.audio.pcm import Pcm
from adapter.audio.resample import StreamResampler, resample

#: The rates webrtcvad works at; audio at any other rate is resampled to 16 kHz for it.
VAD_RATES = (8000, 16000, 32000, 48000)


class VoiceActivity:
    """Speech/non-speech decisions for 16-bit mono audio at `rate`.

    `aggressiveness` 0..3 trades missed speech (3) against noise taken for speech (0).
    `is_speech` and `feed` share one detector whose state (noise estimate, hangover) follows a
    live stream; `speech_flags` and what builds on it start afresh each call, so the same
    audio always gives the same answer.
    """

    def __init__(self, rate: int, aggressiveness: int = 2, frame_ms: int = 20) -> None:
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad frames are 10, 20 or 30 ms, not {frame_ms}")
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness is 0..3, not {aggressiveness}")
        self.rate, self.frame_ms, self.aggressiveness = rate, frame_ms, aggressiveness
        #: bytes in one frame at `rate`, the size `is_speech` takes
        self.frame_bytes = 2 * (rate * frame_ms // 1000)
        self._vad_rate = rate if rate in VAD_RATES else 16000
        self._vad_frame = 2 * (self._vad_rate * frame_ms // 1000)
        self._vad = webrtcvad.Vad(aggressiveness)
        self._stream = StreamResampler(rate, self._vad_rate)
        self._pending = b""

    def is_speech(self, frame: bytes) -> bool:
        """Whether one frame (`frame_bytes` long, at `rate`) holds speech."""
        if len(frame) != self.frame_bytes:
            raise ValueError(f"a {self.frame_ms} ms frame at {self.rate} Hz is "
                             f"{self.frame_bytes} bytes, got {len(frame)}")
        if self._vad_rate != self.rate:
            frame = resample(Pcm(frame, self.rate), self._vad_rate).data
            frame = frame[:self._vad_frame].ljust(self._vad_frame, b"\0")
        return self._vad.is_speech(frame, self._vad_rate)

    def feed(self, chunk: bytes) -> list[bool]:
        """Flags for the frames a live stream's chunk (any length) completes, in order; the
        remainder waits for the next chunk."""
        self._pending += self._stream.process(chunk)
        return self._flags(self._vad, self._take_frames())

    def _take_frames(self) -> list[bytes]:
        size = self._vad_frame
        count = len(self._pending) // size
        frames = [self._pending[i * size:(i + 1) * size] for i in range(count)]
        self._pending = self._pending[count * size:]
        return frames

    def _flags(self, vad: webrtcvad.Vad, frames: list[bytes]) -> list[bool]:
        return [vad.is_speech(frame, self._vad_rate) for frame in frames]

    def speech_flags(self, pcm: Pcm) -> list[bool]:
        """One flag per whole frame of `pcm` (a trailing partial frame is left out)."""
        if pcm.rate != self.rate:
            raise ValueError(f"this detector is for {self.rate} Hz audio, got {pcm.rate} Hz")
        data, size = resample(pcm, self._vad_rate).data, self._vad_frame
        frames = [data[i:i + size] for i in range(0, len(data) - size + 1, size)]
        return self._flags(webrtcvad.Vad(self.aggressiveness), frames)

    def speech_segments(
        self, pcm: Pcm, min_speech_ms: int = 150, hangover_ms: int = 300
    ) -> list[tuple[float, float]]:
        """(start_s, end_s) of each stretch of speech.

        Runs of speech frames shorter than `min_speech_ms` are dropped: clicks, noise bursts,
        and the detector's own start-up, which takes the first 60-120 ms of a noisy recording
        for speech. Pauses up to `hangover_ms` between runs are bridged, so the words of one
        phrase stay one segment.
        """
        min_frames = -(-min_speech_ms // self.frame_ms)
        max_gap = hangover_ms // self.frame_ms
        segments: list[tuple[int, int]] = []
        start = None
        for i, voiced in enumerate([*self.speech_flags(pcm), False]):
            if voiced and start is None:
                start = i
            elif not voiced and start is not None:
                if i - start >= min_frames:
                    if segments and start - segments[-1][1] <= max_gap:
                        segments[-1] = (segments[-1][0], i)
                    else:
                        segments.append((start, i))
                start = None
        seconds = self.frame_ms / 1000
        return [(s * seconds, e * seconds) for s, e in segments]

    def trim_silence(self, pcm: Pcm, pad_ms: int = 200) -> Pcm:
        """`pcm` from `pad_ms` before the first speech to `pad_ms` after the last; empty when
        there is no speech at all."""
        segments = self.speech_segments(pcm)
        if not segments:
            return Pcm(b"", pcm.rate)
        pad = pad_ms / 1000
        first = max(0, round((segments[0][0] - pad) * pcm.rate))
        last = min(pcm.frames, round((segments[-1][1] + pad) * pcm.rate))
        return Pcm(pcm.data[2 * first:2 * last], pcm.rate)
