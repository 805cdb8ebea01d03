"""Strict reading of the whitespace-separated numeric text files UCI HAR and PAMAP2 publish.

A well-formed file goes through pandas' C parser; anything odd sends the suspect lines through a
line-by-line check, so a damaged file is reported as one line naming the file, the line number
and what is wrong there.

Example:
    >>> table = read_table(Path("UCI HAR Dataset/train/y_train.txt"), columns=1)  # doctest: +SKIP
"""

from pathlib import Path

import numpy as np
import pandas as pd

KEY = "data.path"  # the setting to fix when a data file is damaged


def read_table(path: Path, columns: int, nan_ok: bool = False, fix: str = "") -> np.ndarray:
    """The file's numbers as float64 [lines, columns], a row per line; trailing blank lines end it.

    `nan_ok` accepts `NaN` for a missing value. Raises ValueError (`data.path: <file> line <n>:
    ...; <fix>`) for a line with another number of values, a non-number, a missing value where
    none is allowed, a blank line inside the file, or an empty file.
    """
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=range(columns + 1),  # one spare column shows lines with too many values
            dtype=np.float64,
            skip_blank_lines=False,  # keeps row i on line i + 1
            na_values=["NaN", "nan", ""],  # "": the columns a short line lacks
            keep_default_na=False,
            engine="c",
        )
    except ValueError as err:  # a non-number, or far too many values on a line
        _check_lines(path, columns, nan_ok, fix, rows=None)
        raise ValueError(_message(f"{path} cannot be read ({err})", fix)) from None
    table = frame.to_numpy()
    end = len(table)
    while end and np.isnan(table[end - 1]).all():
        end -= 1
    if end == 0:
        raise ValueError(_message(f"{path} is empty", fix))
    missing = np.isnan(table[:, :columns])
    suspect = ~np.isnan(table[:, columns]) | missing[:, -1]  # too many values, or too few
    if not nan_ok:
        suspect |= missing.any(axis=1)
    if suspect.any():
        _check_lines(path, columns, nan_ok, fix, rows=set(np.flatnonzero(suspect)))
    return np.ascontiguousarray(table[:end, :columns])


def line_error(path: Path, row: int, problem: str, fix: str = "") -> ValueError:
    """The error for row `row` of a `read_table` result: `data.path: <file> line <row + 1>: ...`."""
    return ValueError(_message(f"{path} line {row + 1}: {problem}", fix))


def _message(problem: str, fix: str) -> str:
    return f"{KEY}: {problem}; {fix}" if fix else f"{KEY}: {problem}"


def _check_lines(path: Path, columns: int, nan_ok: bool, fix: str, rows: set[int] | None) -> None:
    """Raise for the first malformed line among `rows` (all when None); blank lines end the file."""
    blank = None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for row, line in enumerate(lines):
            if not line.strip():
                blank = row if blank is None else blank
                continue
            if blank is not None:
                raise line_error(path, blank, "is blank", fix)
            if rows is not None and row not in rows:
                continue
            values = line.split()
            if len(values) != columns:
                raise line_error(path, row, f"{len(values)} values, expected {columns}", fix)
            for value in values:
                try:
                    number = float(value)
                except ValueError:
                    raise line_error(path, row, f"{value[:20]!r} is not a number", fix) from None
                if np.isnan(number) and not nan_ok:
                    raise line_error(path, row, "a value is missing (NaN)", fix)
