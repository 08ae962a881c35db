"""The prompts a call plays and whether they are still playing: what barge-in and the no-input timer
depend on.

Doors that report the end of each prompt (Twilio's marks) are believed; for the others a prompt plays
for its duration from when the one before it ends. Request/response doors play each answer before the
next turn, so their prompts never count as playing.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from adapter.audio.decode import decode_audio
from adapter.audio.encode import FORMATS
from adapter.calls.events import Clear, OutputEvent, Play
from adapter.conversation.services import AudioSpec, Services
from adapter.speech.tts_worker import TtsError

log = logging.getLogger(__name__)


class Playout:
    def __init__(self, call_id: str, services: Services, audio: AudioSpec, barge_in: bool,
                 emit: Callable[[OutputEvent], None]) -> None:
        self._call_id = call_id
        self._synthesizer = services.synthesizer
        self._clock = services.clock
        self._audio = audio
        self._barge_in = barge_in
        self._emit = emit
        self._prompt_ids = itertools.count(1)
        self._playing: dict[int, bool] = {}  # prompt id -> may the caller barge in
        self._speaking_until = 0.0

    async def speak(self, text: str, barge_in: bool | None = None) -> None:
        """Render `text` and emit it as a `Play`; a prompt that cannot be rendered is skipped (logged)."""
        fmt = self._audio.out_format
        try:
            audio = await self._synthesizer.render(text, fmt)
        except TtsError as exc:  # the caller misses one prompt; the call goes on
            log.error("call %s: could not synthesize a prompt: %s", self._call_id, exc)
            return
        duration = decode_audio(audio, FORMATS[fmt].content_type).duration_s
        prompt_id = next(self._prompt_ids)
        allowed = self._barge_in if barge_in is None else barge_in
        self._playing[prompt_id] = allowed
        self._speaking_until = max(self._clock.now(), self._speaking_until) + duration
        self._emit(Play(prompt_id, text, audio, fmt, duration, allowed))

    @property
    def speaking(self) -> bool:
        if not self._audio.live:
            return False
        if self._audio.reports_playback:
            return bool(self._playing)
        return self._clock.now() < self._speaking_until

    def played(self, prompt_id: int) -> bool:
        """The door played prompt `prompt_id` to its end; whether every prompt has now been played."""
        self._playing.pop(prompt_id, None)
        return not self._playing

    def until_quiet(self) -> float | None:
        """Seconds until the prompts have played; None when the door will report it (they still play)."""
        if self._audio.reports_playback:
            return None if self._playing else 0.0
        return max(self._speaking_until - self._clock.now(), 0.0)

    @property
    def barge_in_allowed(self) -> bool:
        """Whether the caller may cut what plays now (every prompt playing allows it)."""
        if self._audio.reports_playback:
            return all(self._playing.values())
        return self._barge_in

    def stop(self) -> None:
        """The caller barged in: nothing plays from now on."""
        self._playing.clear()
        self._speaking_until = self._clock.now()
        self._emit(Clear())
