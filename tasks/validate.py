"""Stage 1 of the pipeline: read the table, check it against the data contract, hash it.

Every problem a user can cause (a missing, empty, undecodable or ragged file, or a
table that breaks an expectation) ends in one ``DataValidationError`` whose message
names the file, each broken rule, its column and a few offending values.
"""

from __future__ import annotations

import codecs
import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from selftrain.columns import ColumnRoles, infer_roles
from selftrain.config import DataSettings, PipelineConfig
from selftrain.labels import UNLABELED
from tasks import expectations as ex
from tasks.workspace import file_digests

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


class DataValidationError(ValueError):
    """The table cannot be used; the message says which file, which rule, which values."""


@dataclass
class ValidationReport:
    """Outcome of one validation: ``failures`` holds one plain-words line per broken rule."""

    success: bool
    failures: list[str] = field(default_factory=list)
    evaluated: int = 0
    data_docs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def message(self, source: str) -> str:
        lines = [f"{source}: data validation failed ({len(self.failures)} of "
                 f"{self.evaluated} checks):"]
        lines += [f"  - {failure}" for failure in self.failures]
        if self.data_docs:
            lines.append(f"Data Docs: {self.data_docs[0]}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidatedTable:
    """A table that passed the contract: the frame (unlabeled rows as -1), the sha256 of
    the file, and the column roles that were declared or inferred."""

    frame: pd.DataFrame
    fingerprint: str
    roles: ColumnRoles


def load_and_validate(config: PipelineConfig, reports_dir: str | Path,
                      fingerprint: str | None = None) -> ValidatedTable:
    """Read ``config.data.path``, decide the column roles, validate the table against them.

    ``fingerprint`` is the table's sha256 when the run has hashed it already
    (``tasks.fingerprint``); otherwise the file is hashed here.
    Empty numeric labels are filled with -1 and integral float labels cast to int64.
    Raises ``DataValidationError`` on any problem."""
    data = config.data
    path = Path(config.data.path)
    frame = read_table(path, data.na_values, data.max_rows, data.max_columns,
                       int(data.max_file_mb * 2**20))
    roles = table_roles(frame, data, str(path))
    report = validate_frame(frame, config, reports_dir, roles)
    if not report.success:
        raise DataValidationError(report.message(str(path)))
    return ValidatedTable(normalize_labels(frame, data), fingerprint or fingerprint_file(path),
                          roles)


def table_roles(frame: pd.DataFrame, data: DataSettings, source: str) -> ColumnRoles:
    """The column roles of ``data`` (declared, or inferred), or one clear error."""
    try:
        roles = infer_roles(frame, features=data.features, categorical=data.categorical,
                            datetime=data.datetime, drop=data.drop,
                            exclude=[data.id_column, data.label_column])
    except ValueError as exc:
        raise DataValidationError(f"{source}: {exc}") from None
    if not roles.columns and roles.dropped:
        raise DataValidationError(f"{source}: no feature column is left to learn from; dropped: "
                                  + "; ".join(f"{c} ({why})" for c, why in roles.dropped.items()))
    return roles


@task(name="validate-table", cache_policy=NO_CACHE, persist_result=False)
def validate_table(config: PipelineConfig, reports_dir: str | Path,
                   fingerprint: str | None = None) -> ValidatedTable:
    """Prefect wrapper: never cached on its inputs, since the file may change under the
    same path; leaves a markdown artifact linking the Data Docs and the column roles."""
    try:
        table = load_and_validate(config, reports_dir, fingerprint)
    except DataValidationError as exc:
        _publish_artifact(f"**Data validation failed**\n\n```\n{exc}\n```\n", reports_dir)
        raise
    roles = "\n".join(f"- {line}" for line in table.roles.report())
    _publish_artifact(f"**Data validation passed**: `{config.data.path}`, {len(table.frame)} "
                      f"rows, sha256 `{table.fingerprint}`\n\nColumn roles:\n{roles}\n",
                      reports_dir)
    return table


def validate_frame(frame: pd.DataFrame, config: PipelineConfig, reports_dir: str | Path,
                   roles: ColumnRoles | None = None) -> ValidationReport:
    """Run the GX suites on ``frame`` and write Data Docs under ``reports_dir/data_docs``."""
    started = time.perf_counter()
    data = config.data
    context = ex.new_context(reports_dir)
    rules = ex.build_table_rules(frame, data, roles)
    suite = ex.gx.ExpectationSuite(name="selftrain-table",
                                   expectations=[r.expectation for r in rules])
    result, page = ex.run_checkpoint(context, ex.TABLE_ASSET, suite, frame)
    by_key = {r.key: r for r in rules}
    results, pages = [result], [page]
    counts = None
    if data.label_column in frame.columns:
        counts = ex.count_labeled(frame, data)
        result, page = ex.run_checkpoint(context, ex.COUNTS_ASSET, ex.build_counts_suite(data),
                                         counts)
        results.append(result)
        pages.append(page)
    failures: list[str] = []
    for item in (r for suite_result in results for r in suite_result.results):
        line = None if item.success else ex.describe_failure(item, by_key, counts, data)
        if line and line not in failures:
            failures.append(line)
    return ValidationReport(
        success=not failures,
        failures=failures,
        evaluated=sum(len(r.results) for r in results),
        data_docs=[p for p in pages if p],
        seconds=time.perf_counter() - started,
    )


def normalize_labels(frame: pd.DataFrame, data: DataSettings) -> pd.DataFrame:
    """Empty numeric labels become -1; integral float labels become int64."""
    labels = frame[data.label_column]
    if not pd.api.types.is_numeric_dtype(labels.dtype) or pd.api.types.is_bool_dtype(labels):
        return frame
    labels = labels.fillna(UNLABELED)
    if pd.api.types.is_float_dtype(labels.dtype) and (labels % 1 == 0).all():
        labels = labels.astype("int64")
    return frame.assign(**{data.label_column: labels})


def fingerprint_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """sha256 of the file's bytes, streamed: the content hash that keys checkpoints."""
    return file_digests(path, ("sha256",), chunk_size)["sha256"]


def read_table(path: str | Path, na_values: list[str] | tuple = (),
               max_rows: int | None = None, max_columns: int | None = None,
               max_bytes: int | None = None) -> pd.DataFrame:
    """A CSV or Parquet table as a DataFrame, or a ``DataValidationError`` naming the file
    and what is wrong with it. ``na_values`` are read as missing, besides pyarrow's usual
    tokens (empty, NA, N/A, n/a, NaN, null, ...).

    Bounded before reading, so an oversized table is refused instead of filling memory: a
    CSV by its file size and its header's column count, a Parquet file by the row count,
    column count and uncompressed size its metadata declares."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise DataValidationError(f"{path}: unsupported file type {suffix or '(none)'!r}; "
                                  "expected .csv or .parquet")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: file is empty (0 bytes), expected a header row")
    if suffix in CSV_SUFFIXES:
        _check_csv_size(path, max_columns, max_bytes)
        frame = _read_csv(path, na_values)
    else:
        frame = _read_parquet(path, max_rows, max_columns, max_bytes)
        if na_values:
            frame = frame.replace(list(na_values), None)
    if len(frame) == 0:
        raise DataValidationError(f"{path}: has a header but no data rows "
                                  f"(columns: {', '.join(map(str, frame.columns[:8]))})")
    return frame


def _read_csv(path: Path, na_values=()) -> pd.DataFrame:
    # pyarrow, not pandas: it is multi-threaded and refuses short rows that pandas pads.
    nulls = pa_csv.ConvertOptions().null_values + [str(v) for v in na_values]
    options = pa_csv.ConvertOptions(strings_can_be_null=True, null_values=nulls)
    try:
        table = pa_csv.read_csv(path, convert_options=options)
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "Empty CSV file" in text:
            raise DataValidationError(f"{path}: no header row (file is blank)") from None
        if "columns, got" in text:
            raise DataValidationError(f"{path}: ragged CSV: {_find_ragged_line(path)}") from None
        raise DataValidationError(f"{path}: cannot be parsed as CSV: {text}") from None
    if any(pa.types.is_binary(t) for t in table.schema.types):
        raise DataValidationError(f"{path}: not valid UTF-8 text: {_find_bad_byte(path)}")
    return table.to_pandas()


def _check_csv_size(path: Path, max_columns: int | None, max_bytes: int | None) -> None:
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DataValidationError(f"{path}: {size / 2**20:.1f} MB, more than data.max_file_mb="
                                  f"{max_bytes / 2**20:g}; not read")
    if max_columns is not None:
        with open(path, "rb") as fh:  # the header, read no further than a bounded length
            header = fh.readline(max(64 * 1024, 64 * max_columns))
        columns = header.count(b",") + 1  # an upper bound: quoted commas count too
        if columns > max_columns and len(next(csv.reader([header.decode(
                "utf-8", "replace")]), [])) > max_columns:
            raise DataValidationError(f"{path}: the header has more than data.max_columns="
                                      f"{max_columns} columns; not read")


def _read_parquet(path: Path, max_rows: int | None, max_columns: int | None = None,
                  max_bytes: int | None = None) -> pd.DataFrame:
    try:
        meta = pq.ParquetFile(path).metadata
        rows, columns = meta.num_rows, meta.num_columns
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if max_rows is not None and rows > max_rows:
            raise DataValidationError(f"{path}: has {rows} rows (Parquet metadata), more than "
                                      f"data.max_rows={max_rows}; not read")
        if max_columns is not None and columns > max_columns:
            raise DataValidationError(f"{path}: has {columns} columns (Parquet metadata), more "
                                      f"than data.max_columns={max_columns}; not read")
        if max_bytes is not None and size > max_bytes:
            raise DataValidationError(f"{path}: {size / 2**20:.1f} MB uncompressed (Parquet "
                                      f"metadata), more than data.max_file_mb="
                                      f"{max_bytes / 2**20:g}; not read")
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(f"{path}: not a readable Parquet file: {exc}") from None


def _find_ragged_line(path: Path) -> str:
    """The first line whose field count differs from the header's (error path only)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            if row and len(row) != len(header):
                return (f"line {reader.line_num} has {len(row)} fields, expected "
                        f"{len(header)} like the header")
    return "a line has a different number of fields than the header"


def _find_bad_byte(path: Path, chunk_size: int = 1 << 20) -> str:
    """Byte offset and line of the first invalid UTF-8 byte (error path only)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines = 0, 0
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's buffered tail (never a newline) + this chunk
                start = exc.start - (len(exc.object) - len(chunk))
                line = newlines + chunk.count(b"\n", 0, max(start, 0)) + 1
                bad = exc.object[exc.start]
                return f"byte 0x{bad:02x} at offset {offset + start} (line {line})"
            offset += len(chunk)
            newlines += chunk.count(b"\n")
    return "undecodable bytes"


def _publish_artifact(markdown: str, reports_dir: str | Path) -> None:
    """Best effort: an artifact needs a Prefect run context, the validation does not."""
    if TaskRunContext.get() is None:
        return  # called as .fn() outside a run: creating one would start a server
    index = (Path(reports_dir) / "data_docs" / "index.html").resolve()
    try:
        create_markdown_artifact(markdown=f"{markdown}\n[Data Docs](file://{index})",
                                 key="data-validation", description="GX data validation")
    except Exception as exc:  # an artifact must never fail the validation
        get_run_logger().warning("could not create the data-validation artifact: %s", exc)
