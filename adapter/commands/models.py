"""`kore-voice models`: list the known speech models, download one into models/, verify installs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from adapter.config import ConfigError, Settings
from adapter.modelstore.catalog import Catalog, ModelEntry, check_name
from adapter.modelstore.download import ProgressFn, check_digests, fetch, file_digests
from adapter.modelstore.errors import BadArchive, ChecksumMismatch, ModelStoreError, UnknownModel, Unreachable
from adapter.modelstore.fileset import install_files
from adapter.modelstore.install import inspect, installed_names, unpack
from adapter.speech.whisper_engine import BUNDLED, bundled_model

#: A TOML file of extra [[model]] entries (same format as adapter/modelstore/catalog.toml); its
#: entries replace packaged ones of the same name, e.g. to point at an in-house mirror.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list, download and verify speech models",
        description="Speech models live in KORE_VOICE_MODELS_DIR (default: models/). "
        "KORE_VOICE_MODEL_CATALOG=FILE adds or replaces catalog entries.",
    )
    actions = p.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="known and installed models")
    dl = actions.add_parser(
        "download", help="fetch, check and unpack a model into models/NAME",
        description="Downloads with resume (an interrupted download continues from NAME.zip.part, "
        "or for a model of separate files such as whisper-base.en from models/.NAME.download, next "
        "time), checks the catalog's sha256/md5 (of the zip, or of each file), and installs into "
        "models/NAME.")
    dl.add_argument("name", metavar="NAME", help="a name from `kore-voice models list`")
    dl.add_argument("--url", help="fetch the zip from here instead (a mirror; or any Vosk zip, "
                    "then NAME is the folder it is installed as)")
    vf = actions.add_parser(
        "verify", help="check installed models",
        description="Checks that each model has its marker files (conf/mfcc.conf or am/final.mdl), "
        "that every file unpacked by `download` is still there with its size, and that the sample "
        "rate matches the catalog. Exit status 2 if any check fails.")
    vf.add_argument("name", nargs="?", metavar="NAME", help="only this model")
    p.set_defaults(run=run)


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def bundled_state() -> str:
    """Whether the Whisper model that ships as a package (the default engine's) is there and intact."""
    try:
        return "no" if bundled_model() is None else "yes (bundled)"
    except ConfigError:
        return "broken (bundled)"


def list_models(catalog: Catalog, models_dir: Path) -> int:
    installed = set(installed_names(models_dir))
    rows = [("NAME", "LANGUAGE", "RATE", "SIZE", "INSTALLED")]
    for entry in catalog:
        if entry.name in installed:
            state = "yes" if inspect(models_dir, entry.name, entry).ok else "broken"
        else:
            state = bundled_state() if entry.name == BUNDLED else "no"
        rows.append((entry.name, entry.language or "?", str(entry.sample_rate or "?"),
                     human_size(entry.size), state))
    for name in sorted(installed - {e.name for e in catalog}):
        found = inspect(models_dir, name)
        rows.append((name, "?", str(found.sample_rate or "?"), "?",
                     "yes" if found.ok else "broken"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"models folder: {models_dir}")
    return 0


@contextmanager
def progress_bar(name: str) -> Iterator[ProgressFn]:
    """A rich progress bar on stderr fed by the downloader; silent when stderr is not a terminal,
    so logs and pipes get only the result line."""
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(name, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def download(catalog: Catalog, models_dir: Path, name: str, url: str | None) -> int:
    entry = catalog.get(name)
    if entry is None:
        if not url:
            raise UnknownModel(f"unknown model {name!r}; `kore-voice models list` shows the "
                               "catalog, or give --url for any Vosk zip")
        entry = ModelEntry(name=check_name(name), url=url)
    elif url:
        entry = replace(entry, url=url)
    target = models_dir / entry.name
    if target.exists():
        print(f"{entry.name} is already installed in {target}")
        return 0
    models_dir.mkdir(parents=True, exist_ok=True)
    part = models_dir / f"{entry.name}.zip.part"
    try:
        with progress_bar(entry.name) as on_progress:
            if entry.files:
                asyncio.run(install_files(entry, models_dir, on_progress))
            else:
                asyncio.run(fetch(entry.url, part, size=entry.size, progress=on_progress))
    except Unreachable as exc:
        raise Unreachable(f"{exc.reason}; on an offline machine copy the unpacked model "
                          f"into {target}") from None
    if entry.files:
        print(f"installed {entry.name} in {target}")
        return 0
    if not entry.checksums:
        print(f"kore-voice: no checksum known for {entry.name}; checking only that the archive "
              "unpacks into a model", file=sys.stderr)
    digests = file_digests(part, {"sha256", *entry.checksums})
    try:
        check_digests(f"{entry.name}.zip", digests, entry.checksums)
        unpack(part, models_dir, entry, digests)
    except (ChecksumMismatch, BadArchive) as exc:
        part.unlink()
        raise type(exc)(f"{exc.reason}; the download was deleted, nothing was installed") from None
    part.unlink()
    print(f"installed {entry.name} in {target}")
    return 0


def verify(catalog: Catalog, models_dir: Path, name: str | None) -> int:
    names = [name] if name else installed_names(models_dir)
    if name and not (models_dir / name).is_dir():
        raise UnknownModel(f"{name} is not installed in {models_dir}")
    if not names:
        print(f"no models installed in {models_dir}")
        return 0
    failed = False
    for each in names:
        found = inspect(models_dir, each, catalog.get(each))
        rate = f"{found.sample_rate} Hz" if found.sample_rate else "rate unknown"
        if found.problems:
            failed = True
            print(f"FAIL  {each}: {'; '.join(found.problems)}")
        elif found.manifest:
            files = found.manifest["files"]
            checked = "+".join(found.manifest.get("checked") or [])
            what = "archive" if "archive" in found.manifest else "each file's"
            archive = f"{what} {checked} checked at download" if checked else "no archive checksum known"
            print(f"ok    {each}: {rate}, {len(files)} files as unpacked, {archive}")
        else:
            print(f"ok    {each}: {rate}, layout only (copied in by hand, no manifest)")
    return 2 if failed else 0


def run(args: argparse.Namespace) -> int:
    asr = Settings.load(args.config).asr
    models_dir = asr.models_dir
    actions: dict[str, Callable[[Catalog], int]] = {
        "list": lambda catalog: list_models(catalog, models_dir),
        "download": lambda catalog: download(catalog, models_dir, args.name, args.url),
        "verify": lambda catalog: verify(catalog, models_dir, args.name),
    }
    try:
        catalog = Catalog.load(asr.model_catalog)
        return actions[args.models_action](catalog)
    except ModelStoreError as exc:
        print(f"kore-voice: {exc.reason}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kore-voice: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
