"""The packaged catalog holds real, checkable entries; local catalogs add to it; bad ones fail early."""

from __future__ import annotations

import pytest

from adapter.modelstore.catalog import Catalog, parse_catalog
from adapter.modelstore.errors import CatalogError

REQUIRED = ["vosk-model-small-en-us-0.15", "vosk-model-en-us-0.22-lgraph", "vosk-model-en-us-0.22",
            "vosk-model-small-en-in-0.4", "vosk-model-small-es-0.42", "vosk-model-small-fr-0.22",
            "vosk-model-small-de-0.15", "vosk-model-small-ko-0.22"]


def test_packaged_catalog_has_the_known_vosk_models():
    catalog = Catalog.load()
    names = [entry.name for entry in catalog]
    assert set(REQUIRED) <= set(names)
    for entry in catalog:
        assert entry.kind == "vosk"
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
     "kind must be one of vosk, not 'whisper'"),
    ('[[model]]\nname = "m"\nurl = "file:///m.zip"\n', "url must start with http:// or https://"),
    ('[[model]]\nname = "m"\nurl = "https://x/m.zip"\nsize = -1\n', "size must be a positive whole number"),
    ('[[model]]\nurl = "https://x/m.zip"\n', "name must be a non-empty string"),
])
def test_bad_entries_name_the_problem(toml, reason):
    with pytest.raises(CatalogError) as err:
        parse_catalog(toml.encode(), "x.toml")
    assert err.value.reason == f"model catalog x.toml, entry 1: {reason}"


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
