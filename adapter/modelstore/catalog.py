"""The catalog of known models: the packaged catalog.toml plus an optional local file."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from adapter.modelstore.errors import CatalogError

#: How a model is packaged and checked: "vosk" is one zip holding the model folder (install.unpack);
#: "ctranslate2-whisper" is a set of files fetched one by one, each with its own digest (fileset).
#: Each kind has its layout in `install.LAYOUTS`.
VOSK = "vosk"
CT2_WHISPER = "ctranslate2-whisper"
KINDS = (VOSK, CT2_WHISPER)

#: What a usable model of each kind holds: every requirement, each met by any one of its files.
#: Vosk has two layouts: the current one (conf/mfcc.conf, am/final.mdl) and an old flat one
#: (final.mdl). A CTranslate2 Whisper model needs all its files (faster-whisper would otherwise
#: fetch the tokenizer from the Hub); large-v3 conversions name the vocabulary vocabulary.json.
LAYOUTS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    VOSK: (("conf/mfcc.conf", "am/final.mdl", "final.mdl"),),
    CT2_WHISPER: (("model.bin",), ("config.json",), ("tokenizer.json",), ("vocabulary.txt", "vocabulary.json")),
}

#: Digests a catalog entry may give, with the length of their hex form.
DIGESTS = {"sha256": 64, "md5": 32}

# A name becomes a folder under models/, so it must not hold a path separator or start with a dot.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
HEX_RE = re.compile(r"[0-9a-f]+")

FIELDS = {"name", "kind", "language", "sample_rate", "size", "url", "notes", "files", *DIGESTS}
FILE_FIELDS = {"name", "size", *DIGESTS}


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a model published as separate files; fetched from the entry's url + "/" + name."""

    name: str
    size: int | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One downloadable model. Unknown facts are None (a model given only by URL).

    A zip model (vosk) has `url`, `size` and `checksums` of the archive; a model of separate files
    has `files`, `url` is the folder they are fetched from and `size` their sum.
    """

    name: str
    url: str
    kind: str = VOSK
    language: str | None = None
    sample_rate: int | None = None
    size: int | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""
    files: tuple[ModelFile, ...] = ()

    def file_url(self, file: ModelFile) -> str:
        return f"{self.url.rstrip('/')}/{file.name}"


def layout_gap(kind: str, has: Callable[[str], bool]) -> str | None:
    """None if the files `has` says are there make a model of `kind`, else what is missing."""
    unmet = [" or ".join(need) for need in LAYOUTS[kind] if not any(has(f) for f in need)]
    return f"no {', '.join(unmet)}" if unmet else None


def check_name(name: str) -> str:
    """The name itself if it is safe as a folder name under models/."""
    if not NAME_RE.fullmatch(name):
        raise CatalogError(f"{name!r} is not a usable model name (letters, digits, '.', '_', '-')")
    return name


def parse_entry(raw: Mapping[str, object], where: str) -> ModelEntry:
    """One [[model]] table, validated, so a typo in a catalog fails loudly and early."""
    check_keys(raw, FIELDS, where)

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
    kind = text("kind") or VOSK
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    url = text("url", required=True) or ""
    if not url.startswith(("http://", "https://")):
        raise CatalogError(f"{where}: url must start with http:// or https://")
    files = parse_files(raw.get("files"), kind, where)
    checksums = parse_digests(raw, where)
    if files and checksums:
        raise CatalogError(f"{where}: a {kind} model gives a digest for each file, not for the model")
    size = count("size")
    if files and all(f.size for f in files):
        size = sum(f.size or 0 for f in files)
    return ModelEntry(name=name, url=url, kind=kind, language=text("language"),
                      sample_rate=count("sample_rate"), size=size,
                      checksums=checksums, notes=text("notes") or "", files=files)


def check_keys(raw: Mapping[str, object], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown key {unknown[0]!r}")


def parse_digests(raw: Mapping[str, object], where: str) -> dict[str, str]:
    """The digests a table gives, lower-cased, each of the right length."""
    checksums: dict[str, str] = {}
    for algo, length in DIGESTS.items():
        digest = raw.get(algo)
        if digest is None:
            continue
        if not isinstance(digest, str) or len(digest) != length or not HEX_RE.fullmatch(digest.lower()):
            raise CatalogError(f"{where}: {algo} must be {length} hex digits")
        checksums[algo] = digest.lower()
    return checksums


def parse_files(value: object, kind: str, where: str) -> tuple[ModelFile, ...]:
    """The `files = [{name, size, sha256}, ...]` of a model fetched file by file; only that kind has them."""
    if kind == VOSK:
        if value is not None:
            raise CatalogError(f"{where}: a {VOSK} model is one archive and has no files list")
        return ()
    if not isinstance(value, list) or not value:
        raise CatalogError(f"{where}: a {kind} model needs files = [{{name, size, sha256}}, ...]")
    files: dict[str, ModelFile] = {}
    for i, raw in enumerate(value, 1):
        at = f"{where}, file {i}"
        if not isinstance(raw, dict):
            raise CatalogError(f"{at}: expected a table {{name, size, sha256}}")
        check_keys(raw, FILE_FIELDS, at)
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise CatalogError(f"{at}: name must be a plain file name (letters, digits, '.', '_', '-')")
        size = raw.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise CatalogError(f"{at}: size must be a positive whole number")
        if name in files:
            raise CatalogError(f"{at}: {name} is listed twice")
        files[name] = ModelFile(name, size, parse_digests(raw, at))
    gap = layout_gap(kind, files.__contains__)
    if gap:
        raise CatalogError(f"{where}: its files do not make a {kind} model ({gap})")
    return tuple(files.values())


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
