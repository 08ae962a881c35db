"""What crosses the seam between a door and its conversation: small frozen events, no wire formats.

Doors send input events in and play output events out; neither side knows the other's protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapter.audio.pcm import Pcm
from adapter.calls.keypad import DigitSpec, ExpectedInput
from adapter.calls.replies import BotReply, Menu

# --- in: from the door --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioIn:
    """A chunk of the caller's live audio: 16-bit mono PCM at the call's input rate."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KeyIn:
    """A key the phone system reported (RFC 4733, Twilio `dtmf`, a kiosk button)."""

    key: str


@dataclass(frozen=True, slots=True)
class KeysIn:
    """A whole keypad entry from a request/response door (a REST turn, Twilio's `Digits`): no more
    keys follow, so an unfinished entry ends now instead of after the inter-digit timeout."""

    keys: str


@dataclass(frozen=True, slots=True)
class UtteranceIn:
    """A whole recorded utterance from a request/response door; may hold keypad tones."""

    pcm: Pcm


@dataclass(frozen=True, slots=True)
class TextIn:
    """Text the door already has (typed on a kiosk, or recognised by the phone system)."""

    text: str
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class NoInput:
    """A request/response door's listening window closed with nothing (Twilio's empty `<Gather>` or
    `<Record>`): the same as the no-input timer of a live call."""


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """The door finished playing prompt `prompt_id` to the caller (e.g. Twilio's `mark` came back)."""

    prompt_id: int


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    reason: str = "caller hung up"


@dataclass(frozen=True, slots=True)
class BotReplyIn:
    """A bot reply delivered later, by the async callback receiver."""

    reply: BotReply


InputEvent = (AudioIn | KeyIn | KeysIn | UtteranceIn | TextIn | NoInput | PlaybackDone | CallerHungUp
              | BotReplyIn)

# --- out: to the door ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """Play this prompt, encoded in the door's output format; `barge_in` says if the caller may cut it."""

    prompt_id: int
    text: str
    audio: bytes
    format: str
    duration_s: float
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class Clear:
    """Stop playing now and drop queued audio: the caller barged in."""


@dataclass(frozen=True, slots=True)
class Heard:
    """What the caller said or typed; `final=False` for a partial transcript."""

    text: str
    input: str  # "speech" or "dtmf"
    final: bool = True
    digits: str = ""
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class BotSaid:
    """The bot's texts and menu, for doors that show text."""

    texts: tuple[str, ...]
    menu: Menu | None = None


@dataclass(frozen=True, slots=True)
class Listening:
    """The conversation waits for the caller: the turn is over (request/response doors answer now)."""

    expect: ExpectedInput | None = None
    menu: Menu | None = None

    @property
    def digits(self) -> DigitSpec:
        """The keys collected now: the bot's spec, one key for a menu, else a free entry ended by `#`."""
        if self.expect is not None and self.expect.digits is not None:
            return self.expect.digits
        if self.menu is not None:
            return DigitSpec(num=1)
        return DigitSpec(finish_on_key="#")


@dataclass(frozen=True, slots=True)
class BotFailed:
    """A bot request failed (the caller hears an apology); request/response doors may answer an error.

    `timeout` tells a bot that did not answer in time from one that answered with an error."""

    reason: str
    timeout: bool = False


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call once queued prompts have played."""

    reason: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to `to` (a number or SIP URI) once queued prompts have played."""

    to: str


OutputEvent = Play | Clear | Heard | BotSaid | BotFailed | Listening | HangUp | Transfer
