"""The packaged catalog holds real, checkable entries; local catalogs add to it; bad ones fail early."""

from __future__ import annotations

import pytest

from adapter.modelstore.catalog import CT2_WHISPER, Catalog, parse_catalog
from adapter.modelstore.errors import CatalogError

REQUIRED = ["vosk-model-small-en-us-0.15", "vosk-model-en-us-0.22-lgraph", "vosk-model-en-us-0.22",
            "vosk-model-small-en-in-0.4", "vosk-model-small-es-0.42", "vosk-model-small-fr-0.22",
            "vosk-model-small-de-0.15", "vosk-model-small-ko-0.22"]


def test_packaged_catalog_has_the_known_vosk_models():
    catalog = Catalog.load()
    names = [entry.name for entry in catalog]
    assert set(REQUIRED) <= set(names)
    for entry in catalog:
        if entry.kind != "vosk":
            continue
        assert entry.sample_rate == 16000
        assert entry.url == f"https://alphacephei.com/vosk/models/{entry.name}.zip"
        assert entry.size and entry.size > 30_000_000
        assert entry.checksums, entry.name


def test_packaged_values_are_the_published_ones():
    catalog = Catalog.load()
    small = catalog.get("vosk-model-small-en-us-0.15")
    assert small is not None and small.language == "en-us" and small.size == 41205931
    assert small.checksums == {
        "sha256": "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
        "md5": "09ab50ccd62b674cbaa231b825f9c1cb",
    }
    big = catalog.get("vosk-model-en-us-0.22")
    assert big is not None and big.size == 1913365522
    assert big.checksums == {"md5": "228741ed058893e403dce60bdd659f42"}


@pytest.mark.parametrize(("name", "commit", "sizes", "config_sha", "model_sha"), [
    ("tiny.en", "0d3d19a32d3338f10357c0889762bd8d64bbdeba", (2317, 75537502),
     "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
     "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    ("base.en", "3d3d5dee26484f91867d81cb899cfcf72b96be6c", (2227, 145216508),
     "f3bc3821e9fc76a27bae538e11ae5b677dcdd352b4600429ce7951d398569aeb",
     "2a166925539a16005f14ff328359f9b9adb9dc4fb631bb3b227526862e93e2ef"),
    ("small.en", "d1d751a5f8271d482d14ca55d9e2deeebbae577f", (2657, 483545366),
     "666a9605530ac1f61fa8177f3702b4dacec9966749e42610839fcc32661d5fae",
     "62b2a45b05ee59acb4a5341b33ee35e041395d378d418a18acfe4c9e768ee37a"),
])
def test_packaged_whisper_models_are_systran_files_at_a_fixed_commit(name, commit, sizes, config_sha, model_sha):
    entry = Catalog.load().get(f"whisper-{name}")
    assert entry is not None and entry.kind == CT2_WHISPER and entry.language == "en"
    assert entry.url == f"https://huggingface.co/Systran/faster-whisper-{name}/resolve/{commit}"
    assert [f.name for f in entry.files] == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert [entry.file_url(f) for f in entry.files][1] == f"{entry.url}/model.bin"
    config, model, tokenizer, vocabulary = entry.files
    assert (config.size, model.size) == sizes
    assert (config.checksums, model.checksums) == ({"sha256": config_sha}, {"sha256": model_sha})
    # the English tokenizer and vocabulary are the same files in every .en conversion
    assert (tokenizer.size, tokenizer.checksums["sha256"]) == (
        2128466, "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df")
    assert (vocabulary.size, vocabulary.checksums["sha256"]) == (
        422309, "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf")
    assert entry.size == sum(f.size or 0 for f in entry.files)


def test_local_catalog_adds_and_replaces_by_name(tmp_path):
    extra = tmp_path / "mirror.toml"
    extra.write_text(
        '[[model]]\nname = "vosk-model-small-en-us-0.15"\nurl = "http://mirror.local/s.zip"\n'
        'sha256 = "' + "AB" * 32 + '"\n'
        '[[model]]\nname = "my-model"\nurl = "https://mirror.local/my.zip"\nlanguage = "en-us"\n')
    catalog = Catalog.load(extra)
    small = catalog.get("vosk-model-small-en-us-0.15")
    assert small is not None and small.url == "http://mirror.local/s.zip"
    assert small.checksums == {"sha256": "ab" * 32} and small.size is None
    assert [e.name for e in catalog][-1] == "my-model"
    assert len(catalog) == len(Catalog.load()) + 1


@pytest.mark.parametrize(("toml", "reason"), [
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nsha265 = "00"\n', "unknown key 'sha265'"),
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nsha256 = "00"\n', "sha256 must be 64 hex digits"),
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nmd5 = "' + "g" * 32 + '"\n',
     "md5 must be 32 hex digits"),
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nkind = "whisper"\n',
     "kind must be one of vosk, ctranslate2-whisper, not 'whisper'"),
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nfiles = [{name = "model.bin"}]\n',
     "a vosk model is one archive and has no files list"),
    ('[[model]]\nname = "m"\nurl = "https://x/m"\nkind = "ctranslate2-whisper"\n',
     "a ctranslate2-whisper model needs files = [{name, size, sha256}, ...]"),
    ('[[model]]\nname = "m"\nurl = "file:///m.zip"\n', "url must start with http:// or https://"),
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nsize = -1\n', "size must be a positive whole number"),
    ('[[model]]\nurl = "https://x/m.zip"\n', "name must be a non-empty string"),
])
def test_bad_entries_name_the_problem(toml, reason):
    with pytest.raises(CatalogError) as err:
        parse_catalog(toml.encode(), "x.toml")
    assert err.value.reason == f"model catalog x.toml, entry 1: {reason}"


WHISPER = '[[model]]\nname = "w"\nkind = "ctranslate2-whisper"\nurl = "https://x/w"\nfiles = [\n'
FILE = '{{name = "{}", size = 1, sha256 = "' + "a" * 64 + '"}},\n'
COMPLETE = "".join(FILE.format(n) for n in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"))


@pytest.mark.parametrize(("files", "reason"), [
    (FILE.format("../model.bin"), "file 1: name must be a plain file name (letters, digits, '.', '_', '-')"),
    (COMPLETE + FILE.format("model.bin"), "file 5: model.bin is listed twice"),
    ('{name = "model.bin", size = 0}', "file 1: size must be a positive whole number"),
    ('{name = "model.bin", sha1 = "00"}', "file 1: unknown key 'sha1'"),
    ('{name = "model.bin", sha256 = "00"}', "file 1: sha256 must be 64 hex digits"),
    ('"model.bin"', "file 1: expected a table {name, size, sha256}"),
    (FILE.format("model.bin") + FILE.format("config.json"),
     "its files do not make a ctranslate2-whisper model (no tokenizer.json, vocabulary.txt or vocabulary.json)"),
])
def test_bad_file_lists_name_the_problem(files, reason):
    with pytest.raises(CatalogError) as err:
        parse_catalog(f"{WHISPER}{files}]\n".encode(), "x.toml")
    assert err.value.reason == f"model catalog x.toml, entry 1{',' if reason.startswith('file') else ':'} {reason}"


def test_a_file_list_entry_sums_its_sizes_and_refuses_a_model_digest():
    [entry] = parse_catalog(f"{WHISPER}{COMPLETE}]\n".encode(), "x.toml")
    assert entry.size == 4 and next(f.name for f in entry.files) == "model.bin"
    with pytest.raises(CatalogError) as err:
        parse_catalog(f'{WHISPER}{COMPLETE}]\nsha256 = "{"a" * 64}"\n'.encode(), "x.toml")
    assert err.value.reason == ("model catalog x.toml, entry 1: a ctranslate2-whisper model gives a digest "
                                "for each file, not for the model")


def test_unsafe_name_is_refused():
    with pytest.raises(CatalogError) as err:
        parse_catalog(b'[[model]]\nname = "../etc"\nurl = "https://x/m.zip"\n', "x.toml")
    assert err.value.reason == "'../etc' is not a usable model name (letters, digits, '.', '_', '-')"


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(CatalogError) as err:
        parse_catalog(b"[[model]\n", "x.toml")
    assert err.value.reason.startswith("model catalog x.toml is not valid TOML: ")
    with pytest.raises(CatalogError) as err:
        Catalog.load(tmp_path / "nope.toml")
    missing = tmp_path / "nope.toml"
    assert err.value.reason == f"cannot read model catalog {missing}: No such file or directory"
