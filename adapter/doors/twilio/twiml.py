"""A turn's outcome as TwiML (built with the `twilio` library's `VoiceResponse`): the bot's prompts as one
`<Play>`, then how the caller's answer is collected, or the hang-up or transfer.

How speech and keys are collected (specs/telephony.md §1.2-1.3), by what the bot asked:

- **Keys only** (`speech: false`): `<Gather input="dtmf">` with the prompt nested, so a key cuts the
  prompt; `numDigits`/`finishOnKey` as the bot asked; `actionOnEmptyResult` so silence still reaches
  `/twilio/gather` (no input).
- **Speech, and keys as always** (the conversation takes keys in every turn: a menu choice, the digits
  the bot asked for, or a free entry ended by `#`): Twilio cannot record while a `<Gather>` listens for
  keys, and a bare `<Play>` ignores keys. So the prompt plays nested in a `<Gather numDigits="1"
  finishOnKey="">` that only catches a *first key* (cutting the prompt) and falls through after one
  second of silence to `<Record finishOnKey="0123456789*#">`, which ends on silence, on the maximum turn
  length, or on a key (`Digits` names it). Both answer to `/twilio/recording`: a recording is speech we
  transcribe; a first key either completes the entry (a menu choice) or is answered by a `<Gather>` for
  the rest of it ("rest of entry"), whose action URL carries the keys so far. `<Record>` sends nothing
  for an empty recording (Twilio goes on to the next verb), hence the `<Redirect>` after it: a follow-up
  with neither recording nor key is no input. Twilio documents `timeout` as "seconds of silence" without
  saying whether silence before the caller starts counts; if it does, a caller slower to start than
  that (plus the first-key second) hears the no-input answer and is listened to again.

With KORE_VOICE_TWILIO_SPEECH=gather, speech turns are one `<Gather input="dtmf speech"
speechTimeout="auto">` instead (the menu's labels as `hints`): Twilio's recogniser hears the caller and
`/twilio/gather` gets its `SpeechResult`. Faster to answer (no recording to fetch, no whole seconds
of silence), but the words are Twilio's, not our engine's.

Every action URL carries `t`, the number of the answer it follows, so a retried webhook is told from
the caller's next turn (adapter/doors/twilio/voice.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from adapter.calls.events import Listening, Transfer
from adapter.calls.keypad import DTMF_KEYS, entry_ended_by, finish_key, most_digits
from adapter.doors.rest_calls import TurnResult

GATHER_PATH = "/twilio/gather"
RECORDING_PATH = "/twilio/recording"
# How long the first-key <Gather> waits after the prompt before recording starts: the shortest TwiML has.
FIRST_KEY_WAIT_S = 1


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The conversation's timings in the whole seconds TwiML takes."""

    no_input: int  # for the first key of a keys-only entry, and between its keys
    inter_digit: int  # between the keys of the rest of an entry
    end_silence: int  # the silence that ends a recording (KORE_VOICE_TWILIO_RECORD_SILENCE_SECONDS)
    max_turn: int  # the longest recording

    @classmethod
    def of(cls, no_input_s: float, inter_digit_s: float, end_silence_s: float, max_turn_s: float) -> Timeouts:
        def whole(seconds: float, least: int = 1) -> int:
            return max(least, math.ceil(seconds - 1e-9))

        return cls(whole(no_input_s), whole(inter_digit_s), whole(end_silence_s), whole(max_turn_s, 2))


@dataclass(frozen=True, slots=True)
class Actions:
    """Where the collection verbs of answer number `answer` send the caller's input."""

    base: str  # the service as Twilio reaches it, e.g. https://voice.example.com
    answer: int

    def url(self, path: str, **query: str) -> str:
        return f"{self.base}{path}?{urlencode({'t': self.answer, **query})}"


def _play(verb: VoiceResponse | Gather, audio_url: str | None) -> None:
    if audio_url is not None:
        verb.play(audio_url)


def _listen(response: VoiceResponse, listening: Listening, audio_url: str | None, actions: Actions,
            timeouts: Timeouts, twilio_speech: bool) -> None:
    spec = listening.digits
    keys_only = listening.expect is not None and not listening.expect.speech
    if keys_only or twilio_speech:
        speech = {} if keys_only else {"speech_timeout": "auto", "hints": _hints(listening)}
        gather = response.gather(input="dtmf" if keys_only else "dtmf speech", num_digits=most_digits(spec),
                                 finish_on_key=finish_key(spec), timeout=timeouts.no_input,
                                 action=actions.url(GATHER_PATH), action_on_empty_result=True, **speech)
        _play(gather, audio_url)
        return
    recording = actions.url(RECORDING_PATH)
    first_key = response.gather(input="dtmf", num_digits=1, finish_on_key="", timeout=FIRST_KEY_WAIT_S,
                                action=recording)
    _play(first_key, audio_url)
    response.record(action=recording, timeout=timeouts.end_silence, max_length=timeouts.max_turn, play_beep=False,
                    trim="trim-silence", finish_on_key=DTMF_KEYS)
    response.redirect(recording, method="POST")


def _hints(listening: Listening) -> str | None:
    """The menu's labels as Twilio's speech `hints`."""
    return ", ".join(o.label for o in listening.menu.options) if listening.menu else None


def dial(to: str) -> Dial:
    """`<Dial>` to a SIP URI (`<Sip>`) or a phone number (`<Number>`, a `tel:` prefix dropped)."""
    target = Dial()
    if to.lower().startswith(("sip:", "sips:")):
        target.sip(to)
    else:
        target.number(to.removeprefix("tel:"))
    return target


def reply(result: TurnResult, audio_url: str | None, actions: Actions, timeouts: Timeouts,
          twilio_speech: bool = False) -> VoiceResponse:
    """The TwiML of one turn: its prompts, then listen, transfer or hang up. `twilio_speech`: let
    Twilio's `<Gather input="dtmf speech">` hear the caller instead of recording for our recogniser."""
    response = VoiceResponse()
    if isinstance(result.end, Listening):
        _listen(response, result.end, audio_url, actions, timeouts, twilio_speech)
        return response
    _play(response, audio_url)
    if isinstance(result.end, Transfer):
        response.append(dial(result.end.to))
    else:  # the bot hung up, or the call ended under the turn
        response.hangup()
    return response


def first_key_ends_entry(listening: Listening, key: str) -> bool:
    """Whether one key is a whole entry (a menu choice, a one-key entry, the finish key)."""
    return entry_ended_by(listening.digits, key) is not None


def rest_of_entry(listening: Listening, keys: str, actions: Actions, timeouts: Timeouts) -> VoiceResponse:
    """A silent `<Gather>` for the rest of an entry whose first `keys` came while listening for speech;
    the empty result too goes to `/twilio/gather`, which hands the keys to the conversation."""
    spec = listening.digits
    count = most_digits(spec)
    response = VoiceResponse()
    response.gather(input="dtmf", num_digits=None if count is None else count - len(keys),
                    finish_on_key=finish_key(spec), timeout=timeouts.inter_digit,
                    action=actions.url(GATHER_PATH, keys=keys), action_on_empty_result=True)
    return response


def goodbye(text: str) -> VoiceResponse:
    """A spoken line (Twilio's own voice: no call to render audio for) and the end of the call."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return response


def hang_up() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def transfer(to: str) -> VoiceResponse:
    response = VoiceResponse()
    response.append(dial(to))
    return response


def busy() -> VoiceResponse:
    """Decline a call we cannot take, unanswered (and unbilled), as a busy line."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return response


def http_response(twiml: VoiceResponse | str) -> web.Response:
    """TwiML as Twilio takes it (specs/telephony.md §1.1: text/xml)."""
    return web.Response(text=str(twiml), content_type="text/xml")
