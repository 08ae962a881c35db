"""Unpacks a model archive safely into models/NAME and checks installed models.

The archive is not kept after unpacking (the large models would need twice the disk). Instead a
manifest, `kore-voice-model.json`, is written into the model folder: the archive's digests as
checked at download time and the size of every unpacked file, so `verify` can tell an intact
install from a truncated or half-deleted one without the archive. A model copied in by hand has
no manifest and is checked for its layout only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from adapter.modelstore.catalog import (
    CT2_WHISPER,
    LAYOUTS,
    VOSK,
    ModelEntry,
    layout_gap,
)
from adapter.modelstore.errors import BadArchive

MANIFEST = "kore-voice-model.json"

#: Whisper's feature extractor takes 16 kHz whatever the model
WHISPER_RATE = 16000

SAMPLE_FREQUENCY_RE = re.compile(r"^\s*--sample-frequency\s*=\s*(\d+)", re.MULTILINE)
IGNORED_TOP = {"__MACOSX"}


def check_members(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse any entry that would be written outside the folder it is unpacked into."""
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name).parts
        if (name.startswith("/") or "\\" in name or ".." in parts
                or re.match(r"[A-Za-z]:", name)):
            raise BadArchive(f"{archive.name}: entry {name!r} points outside the model folder; "
                             "refusing to unpack it")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BadArchive(f"{archive.name}: entry {name!r} is a symbolic link; refusing to unpack it")


def model_root(folder: Path) -> Path:
    """Vosk zips hold one top folder named like the model; others put the files at the top."""
    entries = [p for p in folder.iterdir() if p.name not in IGNORED_TOP]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def layout_problem(path: Path, kind: str) -> str | None:
    """None if `path` looks like a usable model of `kind`, else what is missing."""
    return layout_gap(kind, lambda rel: (path / rel).is_file())


def guess_kind(path: Path) -> str:
    """The kind of a folder copied in by hand: CTranslate2 weights are model.bin, else Vosk."""
    return CT2_WHISPER if (path / "model.bin").is_file() else VOSK


def file_sizes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def unpack(archive: Path, models_dir: Path, entry: ModelEntry,
           archive_digests: Mapping[str, str]) -> Path:
    """Unpack `archive` into `models_dir/entry.name`, which appears whole or not at all.

    The zip is unpacked into a hidden temporary folder beside the target and renamed into
    place, so an interrupted unpack never leaves a half model where the engine would load it.
    """
    target = models_dir / entry.name
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise BadArchive(f"{archive.name} is not a usable zip archive ({exc})") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".unpacking", dir=models_dir))
    try:
        with zf:
            check_members(archive, zf.infolist())
            try:
                zf.extractall(tmp)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise BadArchive(f"{archive.name} is damaged ({exc})") from None
        root = model_root(tmp)
        problem = layout_problem(root, entry.kind)
        if problem:
            raise BadArchive(f"{archive.name} does not hold a {entry.kind} model: {problem}")
        manifest = {
            "name": entry.name,
            "kind": entry.kind,
            "url": entry.url,
            "archive": {"size": archive.stat().st_size, **archive_digests},
            "checked": sorted(entry.checksums),
            "files": file_sizes(root),
        }
        (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.rename(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """What `verify` found about one folder under models/."""

    name: str
    path: Path
    sample_rate: int | None
    manifest: Mapping[str, Any] | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def model_sample_rate(path: Path) -> int | None:
    """The rate a Vosk model expects, from `--sample-frequency` in conf/mfcc.conf."""
    try:
        text = (path / "conf" / "mfcc.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = SAMPLE_FREQUENCY_RE.search(text)
    return int(match.group(1)) if match else None


def installed_names(models_dir: Path) -> list[str]:
    """Folders under models/ that may be models (hidden ones are unpacks in progress)."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_manifest(path: Path) -> tuple[Mapping[str, Any] | None, str | None]:
    """(manifest, problem): no manifest is fine (copied by hand); an unreadable one is not."""
    try:
        text = (path / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read {MANIFEST}: {exc.strerror}"
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError:
        return None, f"{MANIFEST} is not valid JSON"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None, f"{MANIFEST} has no file list"
    return manifest, None


def inspect(models_dir: Path, name: str, entry: ModelEntry | None = None) -> InstalledModel:
    """Check one installed model: every file its manifest lists (or, copied in by hand, the layout
    of its kind), and the sample rate."""
    path = models_dir / name
    manifest, problem = read_manifest(path)
    problems = [problem] if problem else []
    kind = str((manifest or {}).get("kind") or (entry.kind if entry else guess_kind(path)))
    if kind not in LAYOUTS:
        problems.append(f"unknown model kind {kind!r}")
    elif not manifest and (layout := layout_problem(path, kind)):
        problems.append(layout)
    if manifest:
        for rel, size in manifest["files"].items():
            file = path / rel
            if not file.is_file():
                problems.append(f"missing {rel}")
            elif file.stat().st_size != size:
                problems.append(f"{rel} is {file.stat().st_size} bytes, was {size} when installed")
    rate = WHISPER_RATE if kind == CT2_WHISPER else model_sample_rate(path)
    if entry and entry.sample_rate and rate and rate != entry.sample_rate:
        problems.append(f"conf/mfcc.conf says {rate} Hz, the catalog says {entry.sample_rate} Hz")
    return InstalledModel(name=name, path=path, sample_rate=rate, manifest=manifest,
                          problems=tuple(problems))
