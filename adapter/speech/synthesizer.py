"""Text (plain, markdown or SSML) to audio in any output format, through a pool of TTS workers and a cache.

Everything heavy runs off the event loop (espeak in the workers, resampling, encoding such as MP3
through ffmpeg, the disk cache in a thread), so rendering one caller's prompt never stalls another's call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from adapter.audio.encode import FORMATS, encode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.config_reader import ConfigError
from adapter.speech.settings import TtsSettings
from adapter.speech.speakable import Pause, Say, segments
from adapter.speech.tts_cache import DiskCache, PromptCache, cache_key
from adapter.speech.tts_worker import ESPEAK_RATE, TtsWorker, Voice


def voice_index(voices: Iterable[Voice]) -> dict[str, str]:
    """Every way a user may name a voice (id, id tail, language, name) mapped to its id."""
    voices = list(voices)
    index: dict[str, str] = {}
    for names in (
        lambda v: [v.id],
        lambda v: [v.id.rsplit("/", 1)[-1]],
        lambda v: list(v.languages),
        lambda v: [v.name],
    ):
        for voice in voices:
            for name in names(voice):
                index.setdefault(name.lower(), voice.id)
    return index


class Synthesizer:
    """Renders prompts with espeak-ng; owns the worker processes and the prompt cache."""

    def __init__(self, settings: TtsSettings) -> None:
        self.settings = settings
        self.cache = PromptCache(
            settings.cache_bytes,
            DiskCache(settings.cache_dir, settings.disk_cache_bytes) if settings.cache_dir else None,
        )
        self._workers = [TtsWorker(settings.timeout_s) for _ in range(settings.workers)]
        self._free: asyncio.Queue[TtsWorker] = asyncio.Queue()
        self._voices: dict[str, str] = {}
        self.default_voice = ""

    @property
    def voices(self) -> list[str]:
        return sorted(set(self._voices.values()))

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self._workers)

    async def start(self) -> None:
        """Start the workers and check the configured voice (a clear error now, not on the first call)."""
        await asyncio.gather(*(asyncio.to_thread(w.start) for w in self._workers))
        for worker in self._workers:
            self._free.put_nowait(worker)
        self._voices = voice_index(await asyncio.to_thread(self._workers[0].voices))
        try:
            self.default_voice = self.resolve_voice(self.settings.voice)
        except ValueError as exc:
            raise ConfigError(f"KORE_VOICE_TTS_VOICE: {exc}") from None

    async def close(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(w.close) for w in self._workers))

    async def __aenter__(self) -> Synthesizer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def resolve_voice(self, voice: str | None) -> str:
        """An espeak voice id from an id, language or name; a `+variant` suffix is kept."""
        if not voice:
            return self.default_voice
        base, plus, variant = voice.partition("+")
        found = self._voices.get(base.strip().lower())
        if found is None:
            examples = ", ".join(sorted(k for k in self._voices if k.startswith("en"))[:6])
            raise ValueError(f"unknown voice {voice!r}; try one of {examples}")
        return f"{found}{plus}{variant}"

    async def _synthesize(self, text: str, voice: str, rate_factor: float) -> Pcm:
        worker = await self._free.get()
        try:
            wpm = round(self.settings.words_per_minute * rate_factor)
            return await asyncio.to_thread(worker.synthesize, text, voice, wpm, self.settings.volume)
        finally:
            self._free.put_nowait(worker)

    async def speak(self, text: str, voice: str | None = None) -> Pcm:
        """Uncached: the words of `text` at espeak's own rate, pauses included."""
        voice_id = self.resolve_voice(voice)
        parts: list[bytes] = []
        for segment in segments(text):
            if isinstance(segment, Pause):
                parts.append(Pcm.silence(segment.seconds, ESPEAK_RATE).data)
            elif isinstance(segment, Say):
                pcm = await self._synthesize(segment.text, voice_id, segment.rate_factor)
                parts.append(resample(pcm, ESPEAK_RATE).data)
        return Pcm(b"".join(parts), ESPEAK_RATE)

    async def pcm(self, text: str, rate: int, voice: str | None = None) -> Pcm:
        """The prompt as PCM at `rate` (resampled once)."""
        return await asyncio.to_thread(resample, await self.speak(text, voice), rate)

    async def render(self, text: str, fmt: str = "wav16k", voice: str | None = None) -> bytes:
        """The prompt encoded in an output format (see adapter.audio.encode.FORMATS), cached."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown audio format {fmt!r}; use one of {', '.join(FORMATS)}")
        voice_id = self.resolve_voice(voice)
        key = cache_key(text, voice_id, self.settings.words_per_minute, self.settings.volume, fmt)
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        audio = await asyncio.to_thread(encode_audio, await self.speak(text, voice_id), fmt)
        await self.cache.put(key, audio)
        return audio

    async def prerender(self, texts: Iterable[str], formats: Iterable[str]) -> None:
        """Render prompts every call uses (welcome, please wait, re-prompts) before the first call."""
        formats = list(formats)
        await asyncio.gather(*(self.render(t, f) for t in texts for f in formats))
