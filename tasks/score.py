"""Batch scoring: a whole table scored offline by a promoted model, in chunks.

The table is streamed (Parquet row groups through ``pyarrow.parquet.ParquetFile.iter_batches``,
CSV blocks through ``pyarrow.csv.open_csv``), so a 10-million-row file never sits in memory
whole. Each chunk goes through the endpoint's row rules (``selftrain.row_rules``): a row the
endpoint would refuse is written to the side file with its row number, id and reason, and
the rest are scored by the model's verified predictor (``selftrain.compiled``: ONNX when it
agreed with scikit-learn at packaging, else scikit-learn). Both outputs are written to
temporary files and renamed at the end: an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NONE

from selftrain.compiled import Predictor, load_predictor
from selftrain.integrity import IntegrityError
from selftrain.row_rules import check_rows, missing_columns
from selftrain.schema import FeatureSchema
from selftrain.store import NoServableModel, servable_entry
from tasks.validate import CSV_SUFFIXES, PARQUET_SUFFIXES

CHUNK_ROWS = 100_000
ROW_COLUMN = "row"  # the input row number (0 = first data row) in both outputs
LABEL_COLUMN = "label"
PROBA_PREFIX = "proba_"


class ScoringError(ValueError):
    """A bad input, output or model: the message names what and where."""


@dataclass(frozen=True)
class ScoringModel:
    tag: str
    predictor: Predictor
    schema: FeatureSchema
    id_column: str | None


@dataclass(frozen=True)
class ScoringSummary:
    model_tag: str
    inference: str  # onnx or sklearn
    why: str
    rows: int
    scored: int
    refused: int
    output: str
    refused_output: str
    seconds: float

    def as_dict(self) -> dict:
        return dict(vars(self))


def open_scoring_model(line: str, requested: str | None = None,
                       threads: int | None = None) -> ScoringModel:
    """The model to score with: ``requested`` (``name:version`` or a version of ``line``),
    else the production model of ``line`` (the top of its history that reads and verifies,
    as serving opens it). Nothing is loaded before its integrity record verifies.
    ``threads``: onnxruntime's (default 1: on a shared 2-core machine a second thread
    measured slower)."""
    try:
        entry = servable_entry(line, requested)
    except NoServableModel as exc:
        hint = "" if requested else ": train one (selftrain run) or pass --model TAG"
        raise ScoringError(f"{exc}{hint}") from None
    try:
        predictor = load_predictor(entry.path, entry.record.integrity, f"model {entry.tag}",
                                   threads=threads or 1)
    except IntegrityError as exc:  # changed since it was verified
        raise ScoringError(str(exc)) from None
    id_column = (entry.record.config.get("data") or {}).get("id_column")
    return ScoringModel(entry.tag, predictor, predictor.schema, id_column)


def score_table(model: ScoringModel, input_path: str | Path, output_path: str | Path,
                refused_path: str | Path | None = None, chunk_rows: int = CHUNK_ROWS,
                progress: Callable[[int, int | None], None] | None = None) -> ScoringSummary:
    """Score every row of ``input_path`` into ``output_path`` (Parquet: the row number,
    the id column when the table has it, the label and one probability column per class);
    refused rows go to ``refused_path`` (CSV; default beside the output). ``progress`` is
    called with (rows done, rows in total or None) after each chunk."""
    import time

    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    refused_path = Path(refused_path) if refused_path else default_refused_path(output_path)
    check_paths(input_path, output_path, refused_path)
    total = None if progress is None else count_rows(input_path)  # only a bar needs it
    if progress is not None:
        progress(0, total)  # the bar shows the total before the first chunk
    chunks = read_chunks(input_path, model.schema, model.id_column, chunk_rows)
    schema = output_schema(model)
    tmp_out = output_path.with_name(f".{output_path.name}.{os.getpid()}.tmp")
    tmp_refused = refused_path.with_name(f".{refused_path.name}.{os.getpid()}.tmp")
    done = scored = refused = 0
    try:
        with pq.ParquetWriter(tmp_out, schema) as writer, open(tmp_refused, "w") as side:
            side.write(",".join([ROW_COLUMN, "id", "field", "reason"]) + "\n")
            for chunk in chunks:
                table, bad = score_chunk(model, chunk, done, schema)
                writer.write_table(table)
                if len(bad):
                    bad.to_csv(side, header=False, index=False)
                done += len(chunk)
                scored += table.num_rows
                refused += bad[ROW_COLUMN].nunique() if len(bad) else 0
                if progress is not None:
                    progress(done, total)
        tmp_out.replace(output_path)
        tmp_refused.replace(refused_path)
    finally:
        for tmp in (tmp_out, tmp_refused):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return ScoringSummary(model.tag, model.predictor.kind, model.predictor.why, done, scored,
                          refused, str(output_path), str(refused_path),
                          round(time.perf_counter() - started, 3))


def score_chunk(model: ScoringModel, chunk: pd.DataFrame, offset: int, schema: pa.Schema
                ) -> tuple[pa.Table, pd.DataFrame]:
    """(the scored rows of one chunk as an Arrow table, its refusals)."""
    rows = np.arange(offset, offset + len(chunk))
    features, refusals = check_rows(chunk, model.schema)
    has_id = model.id_column is not None and model.id_column in chunk.columns
    ids = chunk[model.id_column].to_numpy() if has_id else None
    keep = np.ones(len(chunk), dtype=bool)
    bad = pd.DataFrame(columns=[ROW_COLUMN, "id", "field", "reason"])
    if len(refusals):
        positions = refusals["position"].to_numpy(dtype=np.int64)
        keep[positions] = False
        bad = pd.DataFrame({ROW_COLUMN: rows[positions],
                            "id": ids[positions] if has_id else "",
                            "field": refusals["field"], "reason": refusals["reason"]})
    columns: dict[str, object] = {ROW_COLUMN: rows[keep]}
    if has_id:
        columns[model.id_column] = ids[keep]
    if keep.any():
        proba = model.predictor.predict_proba(features[keep])
        labels = model.predictor.labels(proba)
    else:
        proba = np.empty((0, len(model.predictor.classes_)))
        labels = np.empty(0, dtype=model.predictor.classes_.dtype)
    columns[LABEL_COLUMN] = labels
    for i, cls in enumerate(model.predictor.classes_):
        columns[f"{PROBA_PREFIX}{cls}"] = proba[:, i]
    arrays = [pa.array(columns[f.name], type=f.type) if f.name != model.id_column or not has_id
              else pa.array(_id_values(columns[f.name]), type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema), bad


def output_schema(model: ScoringModel) -> pa.Schema:
    classes = model.predictor.classes_
    label_type = pa.string() if classes.dtype.kind in "OUS" else pa.from_numpy_dtype(
        classes.dtype)
    fields = [pa.field(ROW_COLUMN, pa.int64())]
    if model.id_column:
        fields.append(pa.field(model.id_column, pa.string()))
    fields.append(pa.field(LABEL_COLUMN, label_type))
    fields += [pa.field(f"{PROBA_PREFIX}{c}", pa.float64()) for c in classes]
    return pa.schema(fields)


def read_chunks(path: Path, schema: FeatureSchema, id_column: str | None,
                chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The table's feature (and id) columns, ``chunk_rows`` rows at a time. CSV feature
    columns are read as text and typed by the row rules, so a stray token refuses its row
    rather than the whole file."""
    columns = available_columns(path)
    absent = missing_columns(schema, columns)
    if absent:
        raise ScoringError(f"{path}: lacks the feature column(s) {absent} that the model "
                           f"reads (it has: {', '.join(map(str, columns[:20]))})")
    wanted = list(schema.feature_names)
    if id_column and id_column in columns and id_column not in wanted:
        wanted.append(id_column)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        source = pq.ParquetFile(path)
        for batch in source.iter_batches(batch_size=chunk_rows, columns=wanted):
            yield batch.to_pandas()
        return
    nulls = pa_csv.ConvertOptions().null_values
    convert = pa_csv.ConvertOptions(include_columns=wanted, strings_can_be_null=True,
                                    null_values=nulls,
                                    column_types={c: pa.string() for c in wanted})
    reader = pa_csv.open_csv(path, convert_options=convert,
                             read_options=pa_csv.ReadOptions(block_size=8 << 20))
    pending: list[pd.DataFrame] = []
    size = 0
    try:
        for batch in reader:
            pending.append(batch.to_pandas())
            size += batch.num_rows
            if size >= chunk_rows:
                yield pd.concat(pending, ignore_index=True)
                pending, size = [], 0
    except pa.ArrowInvalid as exc:
        raise ScoringError(f"{path}: unreadable CSV: {str(exc).splitlines()[0]}") from None
    if pending:
        yield pd.concat(pending, ignore_index=True)


def available_columns(path: Path) -> list[str]:
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return list(pq.ParquetFile(path).schema_arrow.names)
        reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 16))
        return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ScoringError(f"{path}: unreadable table: {str(exc).splitlines()[0]}") from None


def count_rows(path: Path) -> int | None:
    """Rows in the table: Parquet's metadata, or a CSV's line count less the header
    (an estimate when quoted values hold line breaks: it only sizes the progress bar)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return pq.ParquetFile(path).metadata.num_rows
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines - 1 + (last != b"\n"), 0)


def check_paths(input_path: Path, output_path: Path, refused_path: Path) -> None:
    if not input_path.is_file():
        raise ScoringError(f"--input {input_path}: file not found")
    if input_path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise ScoringError(f"--input {input_path}: unsupported file type "
                           f"{input_path.suffix or '(none)'!r}; expected .csv or .parquet")
    if input_path.stat().st_size == 0:
        raise ScoringError(f"--input {input_path}: file is empty")
    if output_path.suffix.lower() not in PARQUET_SUFFIXES:
        raise ScoringError(f"--output {output_path}: must be a .parquet file")
    for flag, path in (("--output", output_path), ("--refused", refused_path)):
        if not path.parent.is_dir():
            raise ScoringError(f"{flag} {path}: directory {path.parent} does not exist")
        if path.resolve() == input_path.resolve():
            raise ScoringError(f"{flag} {path}: would overwrite the input")


def default_refused_path(output_path: Path) -> Path:
    return output_path.with_name(output_path.stem + ".refused.csv")


@task(name="batch-score", cache_policy=NONE)
def batch_score(input_path: str, output_path: str, model_name: str,
                model_tag: str | None = None, refused_path: str | None = None,
                chunk_rows: int = CHUNK_ROWS) -> dict:
    """The Prefect task around ``score_table``: scores with the production model of
    ``model_name`` (or ``model_tag``) and returns the summary."""
    model = open_scoring_model(model_name, model_tag)
    return score_table(model, input_path, output_path, refused_path, chunk_rows).as_dict()


def _id_values(values: np.ndarray) -> list:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in values]


