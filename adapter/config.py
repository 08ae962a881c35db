"""One settings object, read from a TOML file and the environment (the environment wins).

Every setting has one name, the environment variable's (e.g. `KORE_VOICE_ASR`); a config file
uses the same names as keys. Secrets are wrapped in `Secret` so they never print.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapter.audio.limits import AudioLimits
from adapter.config_reader import ConfigError, Reader, Secret, load_mapping
from adapter.conversation.settings import ConversationSettings
from adapter.doors.audiosocket.settings import AudioSocketSettings
from adapter.doors.sip.settings import SipSettings
from adapter.doors.twilio.settings import TwilioSettings
from adapter.doors.vonage.settings import VonageSettings
from adapter.kore.settings import KoreSettings
from adapter.service_settings import ServiceSettings
from adapter.speech.settings import AsrSettings, TtsSettings

__all__ = ["ConfigError", "Reader", "Secret", "Settings", "load_mapping"]


@dataclass(frozen=True, slots=True)
class Settings:
    asr: AsrSettings = field(default_factory=AsrSettings)
    limits: AudioLimits = field(default_factory=AudioLimits)
    tts: TtsSettings = field(default_factory=TtsSettings)
    kore: KoreSettings = field(default_factory=KoreSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)
    vonage: VonageSettings = field(default_factory=VonageSettings)
    audiosocket: AudioSocketSettings = field(default_factory=AudioSocketSettings)
    sip: SipSettings = field(default_factory=SipSettings)

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        r = Reader(load_mapping(config_file, environ))
        return cls(asr=AsrSettings.read(r), limits=AudioLimits.read(r), tts=TtsSettings.read(r),
                   kore=KoreSettings.read(r), conversation=ConversationSettings.read(r),
                   service=ServiceSettings.read(r), twilio=TwilioSettings.read(r),
                   vonage=VonageSettings.read(r), audiosocket=AudioSocketSettings.read(r),
                   sip=SipSettings.read(r))
