"""What a conversation is given: the process-wide services it shares, and its door's audio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from adapter.conversation.clock import Clock
from adapter.conversation.store import SessionStore
from adapter.kore.payloads import CallInfo, InputMeta
from adapter.kore.replies import BotReply
from adapter.speech.recognizer import Recognizer
from adapter.speech.synthesizer import Synthesizer


class Bot(Protocol):
    """What the conversation needs of the Kore.ai client (adapter.kore.client.KoreClient)."""

    def stream_start_call(self, call: CallInfo) -> AsyncIterator[BotReply]: ...

    def stream_text(self, call: CallInfo, text: str, meta: InputMeta) -> AsyncIterator[BotReply]: ...

    async def end_call(self, call: CallInfo) -> None: ...


@dataclass(frozen=True, slots=True)
class Services:
    """The process-wide parts every conversation shares."""

    recognizer: Recognizer
    synthesizer: Synthesizer
    bot: Bot
    store: SessionStore
    clock: Clock
    executor: Executor | None = None  # for the blocking recognizer; None: the loop's default


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
