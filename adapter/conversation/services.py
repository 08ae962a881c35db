"""What a conversation is given: the process-wide services it shares, and its door's audio."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from adapter.calls.bot import BotPort
from adapter.calls.clock import Clock
from adapter.conversation.store import SessionStore
from adapter.speech.recognizer import Recognizer
from adapter.speech.recognizer_pool import RecognizerPool
from adapter.speech.synthesizer import Synthesizer


@dataclass(frozen=True, slots=True)
class Services:
    """The process-wide parts every conversation shares."""

    recognizer: Recognizer
    synthesizer: Synthesizer
    bot: BotPort
    store: SessionStore
    clock: Clock
    # where recognizer work runs, shared fairly by every call (the server passes the process's own)
    recognizer_pool: RecognizerPool = field(default_factory=lambda: RecognizerPool(os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """The door's audio: caller PCM rate in, prompt format out, whether it streams live audio (then
    no-input timers run), reports when a prompt has finished playing, and whether keys must be heard
    in the audio (off where the phone system reports them itself: listening too would count a key
    twice, and the detector is the costliest per-frame work)."""

    in_rate: int = 16000
    out_format: str = "wav16k"
    live: bool = False
    reports_playback: bool = False
    inband_dtmf: bool = True
