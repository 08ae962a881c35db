"""Safe unpacking into models/NAME and checks of installed models."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
from fake_model_host import model_zip

from adapter.modelstore.catalog import ModelEntry
from adapter.modelstore.errors import BadArchive
from adapter.modelstore.install import (
    MANIFEST,
    inspect,
    installed_names,
    model_sample_rate,
    unpack,
)

ENTRY = ModelEntry(name="vosk-model-test", url="http://127.0.0.1/m.zip", language="en-us",
                   sample_rate=16000, checksums={"md5": "0" * 32})
DIGESTS = {"sha256": "a" * 64, "md5": "0" * 32}


def write(tmp_path: Path, data: bytes) -> Path:
    archive = tmp_path / "m.zip.part"
    archive.write_bytes(data)
    return archive


def zip_of(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_unpacks_into_models_name_with_manifest(tmp_path, zip_bytes):
    models = tmp_path / "models"
    models.mkdir()
    target = unpack(write(tmp_path, zip_bytes), models, ENTRY, DIGESTS)
    assert target == models / "vosk-model-test"
    assert (target / "conf" / "mfcc.conf").read_text().endswith("--num-mel-bins=40\n")
    assert sorted(p.name for p in models.iterdir()) == ["vosk-model-test"]  # no temp folder left
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["name"] == "vosk-model-test"
    assert manifest["archive"] == {"size": len(zip_bytes), **DIGESTS}
    assert manifest["checked"] == ["md5"]
    assert manifest["files"] == {"am/final.mdl": 200_000, "conf/mfcc.conf": 62, "conf/model.conf": 17,
                                 "graph/words.txt": 19}


def test_files_at_top_of_zip_are_the_model(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    data = zip_of({"conf/mfcc.conf": b"--sample-frequency=8000\n", "am/final.mdl": b"x"})
    target = unpack(write(tmp_path, data), models, ENTRY, DIGESTS)
    assert model_sample_rate(target) == 8000


@pytest.mark.parametrize("evil", ["../evil.txt", "vosk-model-test/../../evil.txt", "/tmp/evil.txt",
                                  "C:/evil.txt", "..\\evil.txt"])
def test_entry_escaping_the_folder_is_refused(tmp_path, evil):
    models = tmp_path / "models"
    models.mkdir()
    data = zip_of({"vosk-model-test/conf/mfcc.conf": b"x", evil: b"owned"})
    with pytest.raises(BadArchive) as err:
        unpack(write(tmp_path, data), models, ENTRY, DIGESTS)
    assert err.value.reason == (f"m.zip.part: entry {evil!r} points outside the model folder; "
                                "refusing to unpack it")
    assert list(models.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entry_is_refused(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    data = zip_of({"vosk-model-test/conf/mfcc.conf": b"x"}, symlink="vosk-model-test/link")
    with pytest.raises(BadArchive) as err:
        unpack(write(tmp_path, data), models, ENTRY, DIGESTS)
    assert err.value.reason == ("m.zip.part: entry 'vosk-model-test/link' is a symbolic link; "
                                "refusing to unpack it")
    assert list(models.iterdir()) == []


def test_zip_without_a_model_is_refused(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(BadArchive) as err:
        unpack(write(tmp_path, zip_of({"top/readme.txt": b"hi"})), models, ENTRY, DIGESTS)
    assert err.value.reason == ("m.zip.part does not hold a vosk model: "
                                "no conf/mfcc.conf or am/final.mdl or final.mdl")
    assert list(models.iterdir()) == []


def test_not_a_zip_is_refused(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(BadArchive) as err:
        unpack(write(tmp_path, b"<html>404</html>"), models, ENTRY, DIGESTS)
    assert err.value.reason == "m.zip.part is not a usable zip archive (File is not a zip file)"


def test_inspect_intact_then_damaged_install(tmp_path, zip_bytes):
    models = tmp_path / "models"
    models.mkdir()
    target = unpack(write(tmp_path, zip_bytes), models, ENTRY, DIGESTS)
    found = inspect(models, "vosk-model-test", ENTRY)
    assert found.ok and found.sample_rate == 16000 and found.manifest is not None
    (target / "graph" / "words.txt").write_bytes(b"cut")
    (target / "conf" / "model.conf").unlink()
    assert inspect(models, "vosk-model-test", ENTRY).problems == (
        "missing conf/model.conf",
        "graph/words.txt is 3 bytes, was 19 when installed",
    )


def test_inspect_model_copied_by_hand(tmp_path):
    models = tmp_path / "models"
    (models / "hand" / "am").mkdir(parents=True)
    (models / "hand" / "am" / "final.mdl").write_bytes(b"x")
    (models / "empty").mkdir()
    (models / ".vosk-model-x.123.unpacking").mkdir()
    assert installed_names(models) == ["empty", "hand"]
    hand = inspect(models, "hand")
    assert hand.ok and hand.manifest is None and hand.sample_rate is None
    assert inspect(models, "empty").problems == ("no conf/mfcc.conf or am/final.mdl or final.mdl",)


def test_inspect_rate_differing_from_catalog(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    data = model_zip(rate=8000)
    unpack(write(tmp_path, data), models, ENTRY, DIGESTS)
    assert inspect(models, "vosk-model-test", ENTRY).problems == (
        "conf/mfcc.conf says 8000 Hz, the catalog says 16000 Hz",)
