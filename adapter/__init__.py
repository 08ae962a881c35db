"""kore-voice-adapter: a voice and keypad channel for Kore.ai bots."""

__version__ = "0.1.0"
