"""The on-disk cache behind `scaffold new`'s speed: black's output and compiled templates."""

from __future__ import annotations

import hashlib
import os
import stat
from importlib.metadata import version

import pytest

from torch_scaffold.generate import cache, formatting
from torch_scaffold.generate.render import render_project
from torch_scaffold.spec.schema import Spec

UGLY = {"pkg/a.py": "x = [1,2,\n  3]\ndef f( a ):\n  return a\n", "README.md": "x = [1,2]\n"}


@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_SCAFFOLD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _forbid_black(monkeypatch):
    def fail(source, path="<generated>"):
        raise AssertionError(f"black ran for {path}")

    monkeypatch.setattr(formatting, "format_python", fail)


def test_a_second_format_is_read_from_the_cache(cache_folder, monkeypatch):
    first = formatting.format_files(UGLY)
    assert first["pkg/a.py"] == "x = [1, 2, 3]\n\n\ndef f(a):\n    return a\n"
    assert first["README.md"] == UGLY["README.md"]  # only Python is formatted
    _forbid_black(monkeypatch)
    assert formatting.format_files(UGLY) == first


def test_a_torn_or_edited_entry_is_recomputed_not_used(cache_folder, monkeypatch):
    expected = formatting.format_files(UGLY)
    (entry,) = (cache_folder / "black").iterdir()
    for damage in (b"", entry.read_bytes()[:-7], entry.read_bytes().replace(b"[1, 2", b"[9, 2")):
        entry.write_bytes(damage)
        assert formatting.format_files(UGLY) == expected
    _forbid_black(monkeypatch)  # and the recomputed entry was stored again, intact
    assert formatting.format_files(UGLY) == expected


def test_changed_input_is_a_new_entry(cache_folder):
    formatting.format_files(UGLY)
    other = formatting.format_files({"pkg/a.py": "y=1\n"})
    assert other["pkg/a.py"] == "y = 1\n"
    assert len(list((cache_folder / "black").iterdir())) == 2


def test_an_unusable_cache_folder_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TORCH_SCAFFOLD_CACHE_DIR", str(blocker / "cache"))
    assert formatting.format_files(UGLY)["pkg/a.py"].startswith("x = [1, 2, 3]")


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_SCAFFOLD_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    formatting.format_files(UGLY)
    assert not list(tmp_path.rglob("*"))


def test_a_cached_render_equals_an_uncached_one(cache_folder, monkeypatch):
    spec = Spec()
    cached_cold = render_project(spec, "lightning")
    cached_warm = render_project(spec, "lightning")
    assert list((cache_folder / "jinja").iterdir()), "compiled templates were stored"
    for entry in (cache_folder / "jinja").iterdir():  # torn compiled templates are recompiled
        entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    assert render_project(spec, "lightning") == cached_cold
    monkeypatch.setenv("TORCH_SCAFFOLD_CACHE_DIR", "off")
    assert cached_cold == cached_warm == render_project(spec, "lightning")


def _ugly_entry(cache_folder):
    black = version("black")
    key = cache.key_of("black", black, str(formatting.LINE_LENGTH), UGLY["pkg/a.py"])
    return cache_folder / "black" / key


def _plant(entry, text: str) -> None:
    """An edit by someone who can write the cache: the checksum is recomputed to match."""
    checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
    entry.write_text(f"{checksum}\n{text}", encoding="utf-8")


def test_an_edited_entry_that_is_not_python_is_recomputed_even_with_its_checksum(
    cache_folder, monkeypatch
):
    expected = formatting.format_files(UGLY)
    entry = _ugly_entry(cache_folder)
    for planted in ("x = [1, 2, 3\n", "<script>alert(1)</script>\n", "x = 1\x00\n"):
        _plant(entry, planted)
        assert formatting.format_files(UGLY) == expected, planted


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX modes")
def test_a_cache_folder_others_may_write_is_emptied_before_it_is_used(cache_folder):
    expected = formatting.format_files(UGLY)
    entry = _ugly_entry(cache_folder)
    _plant(entry, "import os\nos.system('echo planted')\n")  # valid Python: only the mode tells
    compiled = (
        cache_folder / "jinja" / "__jinja2_planted.cache"
    )  # compiled templates run in scaffold
    compiled.parent.mkdir()
    compiled.write_bytes(b"planted")
    for name in ("black", "jinja"):
        (cache_folder / name).chmod(0o777)  # as a umask of 000 (or 002: the group) leaves it
    assert formatting.format_files(UGLY) == expected
    assert cache.subfolder("jinja") == cache_folder / "jinja"
    for name in ("black", "jinja"):
        assert stat.S_IMODE((cache_folder / name).stat().st_mode) == 0o700
    assert "planted" not in entry.read_text() and not compiled.exists()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX modes")
def test_a_cache_folder_made_by_scaffold_is_private(cache_folder):
    formatting.format_files(UGLY)
    assert stat.S_IMODE((cache_folder / "black").stat().st_mode) == 0o700
