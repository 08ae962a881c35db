"""Opening a call, the same for every door: its conversation timed into the app's metrics, with the
conversation settings for its kind of line, registered under the service's call limit, and started.

A door translates its wire; it never builds a `Conversation` itself:

    conversation = open_call(app, CallInfo.new(DOOR, caller, called), AudioSpec(...))   # TooManyCalls
    # a live stream then runs it with adapter.doors.live_call.serve; a request/response door (REST,
    # TwiML) passes its own StageTimes to read each turn's stages, and wraps it (RestCall, TwilioCall).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from adapter.app_state import CALLS, CONVERSATION, METRICS, SERVICES
from adapter.call_registry import TooManyCalls
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.store import CallState
from adapter.stage_timing import StageTimes, timed_services

__all__ = ["TooManyCalls", "open_call", "resume_call"]


def open_call(app: web.Application, call: CallInfo, audio: AudioSpec, times: StageTimes | None = None,
              resumed: CallState | None = None) -> Conversation:
    """The call's conversation, timed into the app's metrics (and into `times` when given), started (the
    bot's welcome is on its way) and registered until it ends.

    Raises:
        TooManyCalls: the service is at KORE_VOICE_MAX_CALLS; nothing was started.
    """
    services = timed_services(app[SERVICES], times or StageTimes(app[METRICS].observe))
    conversation = Conversation(call, services, audio, line_settings(app[CONVERSATION], audio), resumed)
    app[CALLS].start(conversation)
    return conversation


def resume_call(app: web.Application, state: CallState, audio: AudioSpec,
                times: StageTimes | None = None) -> Conversation:
    """A request/response call another instance ran, rebuilt here from its stored state (shared state,
    KORE_VOICE_REDIS_URL): it listens where it stopped, in the bot's same session; no welcome again.

    Raises:
        TooManyCalls: as `open_call`.
    """
    return open_call(app, state.call, audio, times, state)


def line_settings(settings: ConversationSettings, audio: AudioSpec) -> ConversationSettings:
    """The "one moment" filler is for live lines: a request/response caller hears nothing until the
    whole answer is there anyway, so there it never comes before the bot's give-up."""
    if audio.live:
        return settings
    return dataclasses.replace(settings, filler_after_s=settings.bot_giveup_s + 1)
