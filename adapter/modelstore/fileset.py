"""Installs a model published as separate files (CTranslate2 Whisper): each fetched, checked, then all at once.

The files gather in a hidden folder beside the target, models/.NAME.download, each as FILE.part
fetched with resume (HTTP Range, as for a zip): an interrupted run leaves them there and the next
run asks only for what is missing. Each file is checked against the catalog's size and digests
as soon as it is complete; a file that fails is deleted and nothing is installed. When every file
is there and checked, they get their names, a manifest (install.MANIFEST) is written and the
folder is renamed to models/NAME in one step, so an engine never loads half a model.

A file the catalog gives no digest for is refused before anything is fetched: these files are
weights loaded into native code, and every packaged entry has a sha256 for each, so a missing one
means a hand-written catalog to be fixed, not a risk to take quietly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from adapter.modelstore.catalog import ModelEntry, ModelFile
from adapter.modelstore.download import ProgressFn, check_digests, fetch, file_digests
from adapter.modelstore.errors import ChecksumMismatch, Unverifiable
from adapter.modelstore.install import MANIFEST, file_sizes


def staging_folder(models_dir: Path, name: str) -> Path:
    """Where the files of `name` gather until all are there (hidden: not an installed model)."""
    return models_dir / f".{name}.download"


async def install_files(entry: ModelEntry, models_dir: Path, progress: ProgressFn | None = None) -> Path:
    """Fetch every file of `entry` into models_dir/entry.name; returns that folder.

    `progress` gets (bytes so far, total bytes of all files) across the files, in catalog order.
    """
    unchecked = [f.name for f in entry.files if not f.checksums]
    if unchecked:
        raise Unverifiable(f"{entry.name}: the catalog gives no sha256 for {', '.join(unchecked)}; "
                           "refusing to install unchecked model files (give each file a sha256)")
    staging = staging_folder(models_dir, entry.name)
    staging.mkdir(parents=True, exist_ok=True)
    offset = 0
    for file in entry.files:
        part = staging / f"{file.name}.part"
        await fetch(entry.file_url(file), part, size=file.size, progress=_shifted(progress, offset, entry.size))
        try:
            check_file(part, file, f"{entry.name}/{file.name}")
        except ChecksumMismatch as exc:
            part.unlink()
            raise ChecksumMismatch(f"{exc.reason}; the file was deleted, nothing was installed") from None
        offset += part.stat().st_size
    for file in entry.files:
        os.replace(staging / f"{file.name}.part", staging / file.name)
    manifest = {
        "name": entry.name,
        "kind": entry.kind,
        "url": entry.url,
        "checked": sorted({algo for f in entry.files for algo in f.checksums}),
        "digests": {f.name: dict(f.checksums) for f in entry.files},
        "files": file_sizes(staging),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    target = models_dir / entry.name
    os.rename(staging, target)
    return target


def check_file(path: Path, file: ModelFile, where: str) -> None:
    """`path` must have `file`'s size and every digest the catalog gives; ChecksumMismatch names `where`."""
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        raise ChecksumMismatch(f"{where}: {size} bytes, the catalog says {file.size}")
    check_digests(where, file_digests(path, file.checksums), file.checksums)


def _shifted(progress: ProgressFn | None, offset: int, total: int | None) -> ProgressFn | None:
    """One file's progress as progress through all the files."""
    if progress is None:
        return None
    return lambda done, _file_total: progress(offset + done, total)
