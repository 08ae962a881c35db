"""How a conversation behaves: timeouts, retries, barge-in, endpointing and the phrases it says itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapter.config_reader import Reader
from adapter.conversation.endpointing import EndpointSettings


@dataclass(frozen=True, slots=True)
class Phrases:
    filler: str = "One moment, please."
    no_match: str = "Sorry, I didn't catch that."
    no_input_goodbye: str = "Sorry, I still can't hear you. Please call again. Goodbye."
    no_match_goodbye: str = "Sorry, I can't understand you right now. Please call again. Goodbye."
    bot_slow: str = "Sorry, that is taking longer than expected. Please try again."
    bot_error: str = "Sorry, something went wrong on our side. Please try again."
    unavailable: str = "Sorry, this service is not available right now. Please call again later. Goodbye."

    def all(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class ConversationSettings:
    no_input_s: float = 5.0
    max_no_input: int = 3
    max_no_match: int = 3
    inter_digit_s: float = 3.0
    filler_after_s: float = 2.0
    bot_giveup_s: float = 13.0  # below Kore.ai's 15 s webhook limit
    barge_in: bool = True
    barge_in_min_ms: int = 200  # voiced speech needed to cut a prompt, so a cough does not
    min_confidence: float = 0.0
    # an utterance is decoded early at a pause this long, in case it is over (whole-utterance engines; 0: off)
    speculate_ms: int = 200
    max_audio_ahead_s: float = 10.0  # live audio this far ahead of the clock ends the call (a flood)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    phrases: Phrases = field(default_factory=Phrases)

    @classmethod
    def read(cls, r: Reader) -> ConversationSettings:
        return cls(
            no_input_s=r.number("KORE_VOICE_NO_INPUT_SECONDS", 5.0, minimum=0.5),
            max_no_input=r.integer("KORE_VOICE_MAX_NO_INPUT", 3),
            max_no_match=r.integer("KORE_VOICE_MAX_NO_MATCH", 3),
            inter_digit_s=r.number("KORE_VOICE_INTER_DIGIT_SECONDS", 3.0, minimum=0.5),
            filler_after_s=r.number("KORE_VOICE_FILLER_SECONDS", 2.0, minimum=0.1),
            bot_giveup_s=r.number("KORE_VOICE_BOT_GIVEUP_SECONDS", 13.0, minimum=1.0),
            barge_in=r.flag("KORE_VOICE_BARGE_IN", True),
            barge_in_min_ms=r.integer("KORE_VOICE_BARGE_IN_MIN_MS", 200, minimum=20),
            min_confidence=r.number("KORE_VOICE_MIN_CONFIDENCE", 0.0),
            speculate_ms=r.integer("KORE_VOICE_SPECULATE_MS", 200),
            max_audio_ahead_s=r.number("KORE_VOICE_MAX_AUDIO_AHEAD_SECONDS", 10.0, minimum=1.0),
            endpoint=EndpointSettings(
                silence_ms=r.integer("KORE_VOICE_END_SILENCE_MS", 500, minimum=100),
                max_utterance_s=r.number("KORE_VOICE_MAX_UTTERANCE_SECONDS", 15.0, minimum=1.0),
            ),
        )
