"""The catalog of known models: the packaged catalog.toml plus an optional local file."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from adapter.modelstore.errors import CatalogError

#: How a model is packaged and checked. A later kind (e.g. CTranslate2 files) adds a value here,
#: its layout in `install.LAYOUTS` and its own fetch step.
KINDS = ("vosk",)

#: Digests a catalog entry may give, with the length of their hex form.
DIGESTS = {"sha256": 64, "md5": 32}

# A name becomes a folder under models/, so it must not hold a path separator or start with a dot.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
HEX_RE = re.compile(r"[0-9a-f]+")

FIELDS = {"name", "kind", "language", "sample_rate", "size", "url", "notes", *DIGESTS}


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One downloadable model. Unknown facts are None (a model given only by URL)."""

    name: str
    url: str
    kind: str = "vosk"
    language: str | None = None
    sample_rate: int | None = None
    size: int | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""


def check_name(name: str) -> str:
    """The name itself if it is safe as a folder name under models/."""
    if not NAME_RE.fullmatch(name):
        raise CatalogError(f"{name!r} is not a usable model name (letters, digits, '.', '_', '-')")
    return name


def parse_entry(raw: Mapping[str, object], where: str) -> ModelEntry:
    """One [[model]] table, validated, so a typo in a catalog fails loudly and early."""
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise CatalogError(f"{where}: unknown key {unknown[0]!r}")

    def text(key: str, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise CatalogError(f"{where}: {key} must be a non-empty string")
        return value

    def count(key: str) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise CatalogError(f"{where}: {key} must be a positive whole number")
        return value

    name = check_name(text("name", required=True) or "")
    kind = text("kind") or "vosk"
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    url = text("url", required=True) or ""
    if not url.startswith(("http://", "https://")):
        raise CatalogError(f"{where}: url must start with http:// or https://")
    checksums: dict[str, str] = {}
    for algo, length in DIGESTS.items():
        digest = text(algo)
        if digest is not None:
            digest = digest.lower()
            if len(digest) != length or not HEX_RE.fullmatch(digest):
                raise CatalogError(f"{where}: {algo} must be {length} hex digits")
            checksums[algo] = digest
    return ModelEntry(name=name, url=url, kind=kind, language=text("language"),
                      sample_rate=count("sample_rate"), size=count("size"),
                      checksums=checksums, notes=text("notes") or "")


def parse_catalog(data: bytes, source: str) -> list[ModelEntry]:
    """The entries of one catalog file (TOML with a `[[model]]` table per model)."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"model catalog {source} is not valid TOML: {exc}") from None
    tables = doc.get("model", [])
    if not isinstance(tables, list) or set(doc) - {"model"}:
        raise CatalogError(f"model catalog {source}: expected only [[model]] tables")
    return [parse_entry(raw, f"model catalog {source}, entry {i + 1}")
            for i, raw in enumerate(tables)]


class Catalog:
    """Known models by name, in catalog order."""

    def __init__(self, entries: Iterable[ModelEntry]) -> None:
        self._entries = {entry.name: entry for entry in entries}

    @classmethod
    def load(cls, extra: Path | None = None) -> Catalog:
        """The packaged catalog, then `extra` (e.g. a local mirror): its entries win by name."""
        builtin = resources.files(__package__).joinpath("catalog.toml")
        entries = parse_catalog(builtin.read_bytes(), "catalog.toml")
        if extra is not None:
            try:
                data = extra.read_bytes()
            except OSError as exc:
                raise CatalogError(f"cannot read model catalog {extra}: {exc.strerror}") from None
            entries += parse_catalog(data, str(extra))
        return cls(entries)

    def get(self, name: str) -> ModelEntry | None:
        return self._entries.get(name)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
