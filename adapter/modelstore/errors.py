"""Typed model-store errors, each with a one-line reason the CLI prints as is."""

from __future__ import annotations


class ModelStoreError(Exception):
    """A model that cannot be listed, fetched, unpacked or verified. `str(error)` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CatalogError(ModelStoreError):
    """A catalog file that is missing, not TOML, or has a bad entry."""


class UnknownModel(ModelStoreError):
    """A name that is neither in the catalog nor given with a URL."""


class Unreachable(ModelStoreError):
    """The host could not be reached at all (offline, DNS failure, connection refused)."""


class DownloadFailed(ModelStoreError):
    """The server answered but did not deliver the archive (HTTP error, cut transfer, wrong size)."""


class ChecksumMismatch(ModelStoreError):
    """The archive's digest differs from the catalog's; it is deleted, never unpacked."""


class BadArchive(ModelStoreError):
    """A zip that does not open, escapes its folder, or does not hold the expected model."""


class Unverifiable(ModelStoreError):
    """A model file the catalog gives no digest for: weights are refused rather than installed unchecked."""
