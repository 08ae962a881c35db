"""The caller's side of each turn: live audio cut into utterances and recognised, keys collected into
entries (in-band tones, the phone system's keys, a door's whole entry), whole recordings, text; and
what it all means: a menu option by key or by name, digits, words for the bot, or no match.

Input counts only while the call listens. Speech while a prompt plays barges in when the prompt allows
it and the caller has said enough; keys typed during speech win over the speech.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass

from adapter.audio.dtmf import DtmfDetector, detect_keys
from adapter.audio.pcm import Pcm
from adapter.calls.events import Heard
from adapter.calls.info import InputMeta
from adapter.calls.keypad import Digits, DigitSpec
from adapter.calls.phase import Phase
from adapter.conversation.core import CallCore
from adapter.conversation.digits import DigitCollector
from adapter.conversation.endpointing import Endpointer
from adapter.conversation.speech_turn import SpeechTurn
from adapter.conversation.timers import INTER_DIGIT, NO_INPUT
from adapter.speech.recognizer import SILENCE, Transcript

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class Recognized:
    """An utterance's final transcript, posted back to the call's inbox."""

    utterance: int
    transcript: Transcript


def _normalized(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


class CallerInput:
    def __init__(self, core: CallCore) -> None:
        self._core = core
        self._endpointer = Endpointer(core.audio.in_rate, core.settings.endpoint)
        self._dtmf = DtmfDetector(core.audio.in_rate) if core.audio.inband_dtmf else None
        self._collector = DigitCollector(DigitSpec(finish_on_key="#"))
        self._utterance: SpeechTurn | None = None
        self._utterance_ids = itertools.count(1)
        self._utterance_id = 0

    def expect(self, digits: DigitSpec) -> None:
        """A new listening turn: keys are collected by `digits` from the first one."""
        self._collector = DigitCollector(digits)

    def stop(self) -> None:
        """The turn is over (the bot is asked, or the call ends): no more of this turn's input."""
        self._core.timers.cancel(NO_INPUT, INTER_DIGIT)
        self.drop_utterance()

    def drop_utterance(self) -> None:
        if self._utterance is not None:
            self._utterance.cancel()
            self._utterance = None
        self._utterance_id = 0
        self._endpointer.reset()

    @property
    def _listening(self) -> bool:
        return self._core.state.phase == Phase.LISTENING

    @property
    def _speech_expected(self) -> bool:
        expect = self._core.state.expect
        return expect is None or expect.speech

    def _hints(self) -> list[str] | None:
        menu = self._core.state.menu
        return [o.label for o in menu.options] if menu else None

    # --- speech ----------------------------------------------------------------------------------------

    async def audio(self, data: bytes) -> None:
        """A chunk of live audio: keys in it, the utterance it starts, continues or ends, barge-in."""
        core, s = self._core, self._core.settings
        for key in self._dtmf.feed(data) if self._dtmf else ():
            await self.key(key.key)
        if not self._listening or self._collector.started or not self._speech_expected:
            return  # keys only; and while the caller types, the tones' tails are not speech
        step = self._endpointer.feed(data)
        if step.started:
            core.timers.cancel(NO_INPUT)
            self._utterance_id = next(self._utterance_ids)
            utterance_id = self._utterance_id
            self._utterance = SpeechTurn(
                core.services.recognizer, core.services.recognizer_pool, core.call.user_id, core.audio.in_rate,
                self._hints(),
                on_partial=lambda text: core.emit(Heard(text, "speech", final=False)),
                on_final=lambda t: core.post(Recognized(utterance_id, t)),
            )
        if self._utterance is None:
            return
        self._utterance.feed(step.speech, step.silent_ms)
        speaking = core.playout.speaking
        if s.speculate_ms and step.silent_ms >= s.speculate_ms and not step.ended and not speaking:
            self._utterance.speculate()
        barging = speaking and self._endpointer.in_speech and step.voiced_ms >= s.barge_in_min_ms
        if barging and core.playout.barge_in_allowed:
            core.playout.stop()
        if step.ended:
            if core.playout.speaking:
                self.drop_utterance()  # too short to barge in, or the prompt may not be cut: ignore it
                core.arm_no_input()
            else:
                self._utterance.finish()

    async def recognized(self, utterance: int, transcript: Transcript) -> None:
        """An utterance's final transcript; one the turn has moved on from is dropped."""
        if utterance == self._utterance_id:
            self._utterance = None
            await self.heard(transcript.text, transcript.confidence)

    async def recording(self, pcm: Pcm) -> None:
        """A whole recording (request/response doors): keys if it holds tones, else speech."""
        core = self._core
        if not self._listening:
            return
        pool, call = core.services.recognizer_pool, core.call.user_id
        try:  # both are CPU work (a minute of audio: most of a second), so they run in the recognizer's pool
            keys = await pool.run(call, detect_keys, pcm)
            if not keys and self._speech_expected:
                transcript = await pool.run(call, core.services.recognizer.transcribe, pcm, self._hints())
        except Exception as exc:  # noqa: BLE001 - the pool logged it; heard as nothing, the call goes on
            log.warning("call %s: nothing heard in a recording: %s", call, exc)
            keys, transcript = [], SILENCE
        if keys:
            await self.entry("".join(key.key for key in keys))
        elif not self._speech_expected:
            await core.no_match()  # the bot asked for keys only
        else:
            await self.heard(transcript.text, transcript.confidence)

    async def heard(self, text: str, confidence: float | None) -> None:
        """Words from the caller: a menu option by its name, else the words themselves, for the bot."""
        core = self._core
        if not self._listening:
            return
        text = text.strip()
        if not text or (confidence is not None and confidence < core.settings.min_confidence):
            await core.no_match()
            return
        menu = core.state.menu
        chosen = next((o for o in menu.options if _normalized(o.label) == _normalized(text)), None) if menu else None
        core.state.no_match = core.state.no_input = 0
        core.emit(Heard(text, "speech", confidence=confidence))
        core.ask_bot(chosen.payload if chosen else text, InputMeta("speech", confidence=confidence))

    # --- keys ------------------------------------------------------------------------------------------

    async def entry(self, keys: str) -> None:
        """A whole keypad entry: the keys, then the end of the entry if they did not finish it."""
        for key in keys:
            await self.key(key)
        if self._collector.started and self._listening:
            await self._digits(self._collector.timeout())

    async def key(self, key: str) -> None:
        core = self._core
        if not self._listening:
            return
        if core.playout.speaking:
            if not core.playout.barge_in_allowed:
                return
            core.playout.stop()
        self.drop_utterance()  # keys typed during speech win over the speech
        core.timers.cancel(NO_INPUT)
        entry = self._collector.press(key)
        if entry is None:
            core.timers.set(INTER_DIGIT, core.settings.inter_digit_s)
        else:
            await self._digits(entry)

    async def inter_digit_timeout(self) -> None:
        await self._digits(self._collector.timeout())

    async def _digits(self, entry: Digits) -> None:
        core = self._core
        core.timers.cancel(INTER_DIGIT)
        if not entry.complete or not entry.digits:
            await core.no_match()
            return
        menu = core.state.menu
        payload = menu.payload_for(entry.digits) if menu else None
        text = payload if payload is not None else entry.digits
        core.state.no_match = core.state.no_input = 0
        core.emit(Heard(text, "dtmf", digits=entry.digits))
        core.ask_bot(text, InputMeta("dtmf", keys=entry.keys))

