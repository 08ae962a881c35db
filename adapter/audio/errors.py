"""Typed audio errors, each with a one-line reason a caller can be shown as is."""

from __future__ import annotations


class AudioError(ValueError):
    """Audio that cannot be used. `str(error)` is one human-readable line."""

    #: HTTP status a door should answer with; subclasses refine it.
    http_status = 415

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedAudio(AudioError):
    """An encoding, container or content type we do not decode."""


class MalformedAudio(AudioError):
    """The bytes do not match what their header or content type says."""


class AudioTooLarge(AudioError):
    """More bytes than the configured maximum."""

    http_status = 413


class AudioTooLong(AudioError):
    """Longer than the configured maximum turn length."""

    http_status = 413
