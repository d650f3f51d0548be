"""File-level problems: each one a single DataValidationError naming file and fault."""

import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from tasks.validate import DataValidationError, _find_bad_byte, fingerprint_file, read_table


def test_header_only_file_is_refused(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("id,label,f0\n")
    with pytest.raises(DataValidationError, match="no data rows") as info:
        read_table(path)
    assert str(path) in str(info.value)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"empty \(0 bytes\)"):
        read_table(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        read_table(tmp_path / "nope.csv")


def test_unsupported_suffix_is_refused(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataValidationError, match=r"unsupported file type '\.xlsx'"):
        read_table(path)


def test_non_utf8_file_names_byte_and_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"id,label,f0\n1,0,0.5\n2,1,caf\xe9\n")
    with pytest.raises(DataValidationError, match="not valid UTF-8") as info:
        read_table(path)
    assert "byte 0xe9 at offset 27 (line 3)" in str(info.value)


@pytest.mark.parametrize("chunk_size", [1, 4, 27, 28, 1 << 20])
def test_bad_byte_offset_holds_across_chunk_borders(tmp_path, chunk_size):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"id,label,f0\n1,0,0.5\n2,1,caf\xe9\n")
    assert _find_bad_byte(path, chunk_size) == "byte 0xe9 at offset 27 (line 3)"


@pytest.mark.parametrize(("body", "where"), [
    ("1,0,0.5\n2,1,0.7,9\n", "line 3 has 4 fields, expected 3"),
    ("1,0,0.5\n2,1\n3,0,0.1\n", "line 3 has 2 fields, expected 3"),
])
def test_ragged_csv_names_the_line(tmp_path, body, where):
    path = tmp_path / "ragged.csv"
    path.write_text("id,label,f0\n" + body)
    with pytest.raises(DataValidationError, match="ragged CSV") as info:
        read_table(path)
    assert where in str(info.value)


def test_corrupt_parquet_is_refused(tmp_path):
    path = tmp_path / "table.parquet"
    path.write_bytes(b"id,label\n1,2\n")
    with pytest.raises(DataValidationError, match="not a readable Parquet file"):
        read_table(path)


def test_blank_labels_read_as_missing(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("id,label,f0\n1,,0.5\n2,1,0.7\n")
    frame = read_table(path)
    assert frame["label"].isna().tolist() == [True, False]


def test_fingerprint_is_sha256_of_bytes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,label\n1,2\n")
    assert fingerprint_file(path, chunk_size=3) == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(b"id,label\n1,3\n")
    assert fingerprint_file(path) != hashlib.sha256(b"id,label\n1,2\n").hexdigest()


@pytest.fixture
def nothing_is_read(monkeypatch):
    """Reading a table at all fails the test: the bounds must refuse it before."""
    import pyarrow.csv
    import pyarrow.parquet

    def refuse(*args, **kwargs):
        raise AssertionError("the table was read before its size was checked")

    monkeypatch.setattr(pyarrow.csv, "read_csv", refuse)
    monkeypatch.setattr(pyarrow.parquet, "read_table", refuse)


def _wide_frame(rows: int, columns: int) -> pd.DataFrame:
    return pd.DataFrame(np.zeros((rows, columns)), columns=[f"c{i}" for i in range(columns)])


@pytest.mark.parametrize(("kind", "bounds", "message"), [
    ("csv", {"max_bytes": 1024}, "MB, more than data.max_file_mb="),
    ("csv", {"max_columns": 10}, "more than data.max_columns=10 columns; not read"),
    ("parquet", {"max_rows": 100}, "has 500 rows (Parquet metadata), more than data.max_rows"),
    ("parquet", {"max_columns": 10}, "has 20 columns (Parquet metadata), more than"),
    ("parquet", {"max_bytes": 1024}, "MB uncompressed (Parquet metadata), more than"),
])
def test_oversized_tables_are_refused_before_reading(tmp_path, nothing_is_read, kind, bounds,
                                                     message):
    path = tmp_path / f"big.{kind}"
    frame = _wide_frame(500, 20)
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    with pytest.raises(DataValidationError, match=re.escape(message)):
        read_table(path, **bounds)


def test_tables_within_bounds_are_read(tmp_path):
    path = tmp_path / "ok.parquet"
    _wide_frame(500, 20).to_parquet(path, index=False)
    frame = read_table(path, max_rows=500, max_columns=20, max_bytes=10 * 2**20)
    assert frame.shape == (500, 20)
    csv_path = tmp_path / "ok.csv"
    _wide_frame(500, 20).to_csv(csv_path, index=False)
    assert read_table(csv_path, max_columns=20, max_bytes=10 * 2**20).shape == (500, 20)
