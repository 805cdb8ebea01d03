"""The windows cache: reused while settings and raw files stay, rebuilt when anything is off."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from trainables.data.parts.cache import KEY_ARRAY, default_cache_dir, load_or_build

NAMES = ("x", "y")


class Builder:
    """A `build` function that counts its calls, as a loader's raw-file parser would be."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"x": np.arange(24, dtype=np.float32).reshape(4, 2, 3), "y": np.arange(4)}


@pytest.fixture
def raw_file(tmp_path: Path) -> Path:
    file = tmp_path / "raw.txt"
    file.write_text("1 2 3\n")
    return file


def load(raw_file: Path, cache: Path, build: Builder, settings: dict | None = None) -> dict[str, np.ndarray]:
    return load_or_build("demo", settings or {"window": 3}, [raw_file], cache, build, NAMES)


def only_cache_file(cache: Path) -> Path:
    (file,) = cache.glob("demo-*.npz")
    return file


def test_the_second_load_uses_the_cache(raw_file, tmp_path):
    build = Builder()
    first = load(raw_file, tmp_path / "cache", build)
    second = load(raw_file, tmp_path / "cache", build)
    assert build.calls == 1
    np.testing.assert_array_equal(first["x"], second["x"])
    assert set(second) == set(NAMES) and second["y"].dtype == first["y"].dtype


def test_a_changed_setting_builds_a_new_cache(raw_file, tmp_path):
    build = Builder()
    load(raw_file, tmp_path / "cache", build, {"window": 3})
    load(raw_file, tmp_path / "cache", build, {"window": 4})
    load(raw_file, tmp_path / "cache", build, {"window": 3})
    assert build.calls == 2 and len(list((tmp_path / "cache").glob("demo-*.npz"))) == 2


def test_a_raw_file_of_another_size_builds_a_new_cache(raw_file, tmp_path):
    build = Builder()
    load(raw_file, tmp_path / "cache", build)
    mtime = raw_file.stat().st_mtime_ns
    raw_file.write_text("1 2 3 4\n")
    os.utime(raw_file, ns=(mtime, mtime))  # the same time: only the size tells
    load(raw_file, tmp_path / "cache", build)
    assert build.calls == 2


def test_a_raw_file_rewritten_with_the_same_size_builds_a_new_cache(raw_file, tmp_path):
    build = Builder()
    load(raw_file, tmp_path / "cache", build)
    mtime = raw_file.stat().st_mtime_ns
    raw_file.write_text("4 5 6\n")
    # A second later, set explicitly: a quick rewrite may keep the time on a coarse clock.
    os.utime(raw_file, ns=(mtime + 10**9, mtime + 10**9))
    load(raw_file, tmp_path / "cache", build)
    assert build.calls == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda f: f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2]), id="truncated"),
        pytest.param(lambda f: f.write_bytes(b"not a zip file"), id="garbage"),
        pytest.param(lambda f: f.write_bytes(b""), id="empty"),
    ],
)
def test_a_corrupt_cache_is_rebuilt_not_used(raw_file, tmp_path, caplog, damage):
    build = Builder()
    load(raw_file, tmp_path / "cache", build)
    damage(only_cache_file(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="trainables.data.parts.cache"):
        arrays = load(raw_file, tmp_path / "cache", build)
    assert build.calls == 2 and "is unreadable" in caplog.text and "rebuilding it" in caplog.text
    np.testing.assert_array_equal(arrays["x"], Builder()()["x"])
    assert load(raw_file, tmp_path / "cache", build) and build.calls == 2, "the rebuilt cache is used"


def test_flipped_bytes_inside_an_array_are_caught_by_the_checksum(raw_file, tmp_path):
    build = Builder()
    load(raw_file, tmp_path / "cache", build)
    file = only_cache_file(tmp_path / "cache")
    data = bytearray(file.read_bytes())
    start = data.index(np.arange(24, dtype=np.float32).tobytes())
    data[start + 8] ^= 0xFF
    file.write_bytes(bytes(data))
    arrays = load(raw_file, tmp_path / "cache", build)
    assert build.calls == 2 and arrays["x"].ravel()[2] == 2.0


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ({"x": np.zeros((4, 2, 3)), "y": np.zeros(4), KEY_ARRAY: np.array("another key")}, "stale"),
        ({"x": np.zeros((4, 2, 3)), "y": np.zeros(4)}, "stale"),
        ({"x": np.zeros((4, 2, 3)), KEY_ARRAY: None}, "incomplete"),
        ({"x": np.zeros((4, 2, 3)), "y": np.zeros(3), KEY_ARRAY: None}, "inconsistent"),
    ],
)
def test_a_cache_with_another_key_or_bad_arrays_is_rebuilt(raw_file, tmp_path, caplog, stored, reason):
    build = Builder()
    load(raw_file, tmp_path / "cache", build)
    file = only_cache_file(tmp_path / "cache")
    with np.load(file) as npz:
        key = npz[KEY_ARRAY]
    np.savez(file, **{name: key if value is None else value for name, value in stored.items()})
    with caplog.at_level(logging.WARNING, logger="trainables.data.parts.cache"):
        arrays = load(raw_file, tmp_path / "cache", build)
    assert build.calls == 2 and f"is {reason}" in caplog.text
    assert arrays["x"].sum() == Builder()()["x"].sum()


def test_an_unwritable_cache_folder_is_a_warning_and_the_data_still_loads(raw_file, tmp_path, caplog):
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="trainables.data.parts.cache"):
        arrays = load(raw_file, blocked / "cache", Builder())
    assert arrays["x"].shape == (4, 2, 3) and "set data.cache_dir to a writable folder" in caplog.text


def test_the_default_cache_folder_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "tuner"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "tuner"
