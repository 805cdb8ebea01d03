"""Windows cached as .npz, keyed by the data settings and the raw files they were built from.

Parsing a data set's raw text takes seconds to minutes; loading its cached windows takes a
fraction of a second. The key hashes the loader's name, its settings and each raw file's path,
size and modification time, so a changed setting or a replaced file builds (and caches) anew. A
cache file that cannot be read, misses an array, holds arrays of different lengths or was
written under another key is rebuilt, never used. Files are written to a temporary name and
renamed, so a run killed mid-write leaves no half file behind.

Example:
    >>> arrays = load_or_build(  # doctest: +SKIP
    ...     "pamap2", {"window": 512}, raw_files, "~/.cache/tuner", parse_raw_files, ["x", "y"]
    ... )
"""

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1  # bump when a loader's windows change for the same settings and files
KEY_ARRAY = "__cache_key__"


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/tuner`, else `~/.cache/tuner`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tuner"


def cache_key(name: str, settings: dict, files: Sequence[Path]) -> str:
    """sha256 of the loader name, its settings and each raw file's absolute path, size and mtime."""
    stats = []
    for path in files:
        stat = Path(path).stat()
        stats.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    described = {"format": FORMAT, "name": name, "settings": settings, "files": stats}
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def load_or_build(
    name: str,
    settings: dict,
    files: Sequence[Path],
    cache_dir: str | os.PathLike | None,
    build: Callable[[], dict[str, np.ndarray]],
    names: Sequence[str],
) -> dict[str, np.ndarray]:
    """The arrays `build()` returns for these settings and files, from the cache when it is valid.

    `build` returns the arrays `names`, of equal length (one entry per window). `cache_dir` None
    means `default_cache_dir()`. A cache that cannot be written is a warning, not an error.
    """
    key = cache_key(name, settings, files)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / f"{name}-{key[:16]}.npz"
    if path.exists():
        arrays, problem = _read(path, key, names)
        if arrays is not None:
            log.info("data: loaded cached windows from %s", path)
            return arrays
        log.warning("data: cache %s is %s; rebuilding it", path, problem)
    arrays = build()
    try:
        _write(path, key, arrays)
        log.info("data: cached windows at %s", path)
    except OSError as err:
        fix = "set data.cache_dir to a writable folder"
        log.warning("data: cannot write the cache %s (%s); %s", path, err, fix)
    return arrays


def _read(path: Path, key: str, names: Sequence[str]) -> tuple[dict[str, np.ndarray] | None, str]:
    """The cached arrays, or None and why they cannot be used."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # reads every array, checking its CRC
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    stored = arrays.pop(KEY_ARRAY, None)
    if stored is None or stored.shape != () or str(stored) != key:
        return None, "stale (written under another key)"
    if sorted(arrays) != sorted(names):
        return None, f"incomplete (holds {sorted(arrays)}, expected {sorted(names)})"
    if len({len(a) if a.ndim else -1 for a in arrays.values()}) != 1:
        return None, "inconsistent (arrays of different lengths)"
    return arrays, ""


def _write(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays, **{KEY_ARRAY: np.array(key)})
        os.chmod(temporary, 0o644)  # mkstemp's 0o600 would hide a shared cache from others
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
