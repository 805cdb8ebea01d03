"""Strict reading of whitespace-separated numeric text, with errors naming the file and line."""

from pathlib import Path

import numpy as np
import pytest

from trainables.data.parts.tables import line_error, read_table


def write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "table.txt"
    file.write_bytes(text.encode("latin-1"))  # "\xff" stays one byte, not UTF-8
    return file


def test_leading_and_repeated_spaces_and_windows_line_ends_are_read(tmp_path):
    file = write(tmp_path, "  1.0e-003  -2.5e+000 3\r\n 4   5  6\r\n")
    np.testing.assert_array_equal(read_table(file, 3), [[0.001, -2.5, 3], [4, 5, 6]])


def test_nan_is_a_missing_value_only_where_allowed(tmp_path):
    file = write(tmp_path, "1 NaN 3\n4 5 6\n")
    assert np.isnan(read_table(file, 3, nan_ok=True)[0, 1])
    with pytest.raises(ValueError, match=rf"^data.path: {file} line 1: a value is missing \(NaN\); fix it"):
        read_table(file, 3, fix="fix it")


def test_trailing_blank_lines_end_the_table_but_a_blank_line_inside_is_an_error(tmp_path):
    assert read_table(write(tmp_path, "1 2\n3 4\n\n  \n"), 2).shape == (2, 2)
    with pytest.raises(ValueError, match="line 2: is blank"):
        read_table(write(tmp_path, "1 2\n\n3 4\n"), 2)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1 2 3\n4 5\n", "line 2: 2 values, expected 3"),
        ("1 2 3\n4 5 6 7\n", "line 2: 4 values, expected 3"),
        ("1 2 3\n4 5 6 7 8 9 10\n", "line 2: 7 values, expected 3"),
        ("1 2 3\n4 NA 6\n", "line 2: 'NA' is not a number"),
        ("1 2 3\n4 5 6\n7 8 9,0\n", "line 3: '9,0' is not a number"),
        ("1 2 3\n4 5 \xff\n", "line 2: '\ufffd' is not a number"),
    ],
)
def test_a_malformed_line_is_named_with_its_number(tmp_path, text, problem):
    file = write(tmp_path, text)
    with pytest.raises(ValueError, match=f"^data.path: {file} {problem}"):
        read_table(file, 3)


def test_an_empty_file_is_an_error(tmp_path):
    for text in ("", "\n\n"):
        with pytest.raises(ValueError, match="table.txt is empty"):
            read_table(write(tmp_path, text), 3)


def test_line_error_counts_lines_from_one():
    assert str(line_error(Path("y.txt"), 0, "bad", "fix")) == "data.path: y.txt line 1: bad; fix"
