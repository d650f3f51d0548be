"""The data contract as a Great Expectations 1.x suite, built in code from the config.

Two batches are validated: the table itself (schema, types, finiteness, ids, label
domain, row count) and a small per-class frame of labeled-row counts, because GX has
no pandas expectation for "each value occurs at least k times". Both results land in
the same Data Docs site and the same error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from selftrain.config import DataSettings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
)

SITE_NAME = "selftrain"
SOURCE_NAME = "selftrain"
TABLE_ASSET = "table"
COUNTS_ASSET = "label_counts"
COUNT_COLUMN = "labeled_rows"
CLASS_COLUMN = "class"
# BASIC with a few unexpected values: SUMMARY's value counts cost ~2x at 1M rows.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}
NUMERIC_TYPES = [
    *(f"{kind}{bits}" for kind in ("int", "uint", "Int", "UInt") for bits in (8, 16, 32, 64)),
    *(f"{kind}{bits}" for kind in ("float", "Float") for bits in (32, 64)),
    "float16",
]
FINITE_BOUND = 1.7976931348623157e308  # float max: anything beyond is +-inf
MAX_EXAMPLES = 5


def unlabeled_markers(data: DataSettings) -> list[Any]:
    """Label values that mean "no label" besides empty: -1, and "-1" unless classes are ints."""
    if data.classes is not None and not any(isinstance(c, str) for c in data.classes):
        return [-1]
    return [-1, "-1"]


def feature_columns(frame: pd.DataFrame, data: DataSettings) -> list[str]:
    return [c for c in frame.columns if c not in (data.id_column, data.label_column)]


def build_table_suite(frame: pd.DataFrame, data: DataSettings) -> gx.ExpectationSuite:
    """One suite for the table; value checks only for columns that exist, so a missing
    column is reported once instead of as a cascade of errors."""
    expectations: list[Any] = [
        gxe.ExpectColumnToExist(column=data.label_column),
        gxe.ExpectColumnToExist(column=data.id_column),
        gxe.ExpectTableRowCountToBeBetween(min_value=data.min_rows, max_value=data.max_rows),
        gxe.ExpectTableColumnCountToBeBetween(min_value=3),
    ]
    if data.id_column in frame.columns:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=data.id_column),
            gxe.ExpectColumnValuesToBeUnique(column=data.id_column),
        ]
    if data.label_column in frame.columns and data.classes is not None:
        value_set = list(data.classes) + unlabeled_markers(data)
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=data.label_column,
                                                            value_set=value_set))
    for column in feature_columns(frame, data):
        expectations += [
            gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=NUMERIC_TYPES),
            gxe.ExpectColumnValuesToNotBeNull(column=column),
        ]
        if pd.api.types.is_numeric_dtype(frame[column].dtype):
            # between() on strings raises inside GX; the type check already reports them
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value=-FINITE_BOUND, max_value=FINITE_BOUND))
    return gx.ExpectationSuite(name="selftrain-table", expectations=expectations)


def count_labeled(frame: pd.DataFrame, data: DataSettings) -> pd.DataFrame:
    """Labeled rows per class: declared classes (0 when absent) or the labels seen."""
    labels = frame[data.label_column]
    labeled = labels[labels.notna() & ~labels.isin(unlabeled_markers(data))]
    counts = labeled.value_counts()
    classes = list(data.classes) if data.classes is not None else list(counts.index)
    values = [int(counts.get(c, 0)) for c in classes]
    return pd.DataFrame({CLASS_COLUMN: [str(c) for c in classes], COUNT_COLUMN: values})


def build_counts_suite(data: DataSettings) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="selftrain-labeled-per-class", expectations=[
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnSumToBeBetween(column=COUNT_COLUMN, min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column=COUNT_COLUMN,
                                          min_value=data.min_labeled_per_class),
    ])


def new_context(reports_dir: str | Path):
    """A fresh ephemeral GX context whose only Data Docs site is ``reports_dir/data_docs``.

    Fresh per validation on purpose: reusing one makes ``add_or_update`` compare every
    expectation pairwise (minutes for 200 of them) and re-renders every past result."""
    docs_dir = (Path(reports_dir) / "data_docs").resolve()
    # the default ephemeral config adds a docs site in a fresh temp dir on every call
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = {"globally": False}
    context.add_data_docs_site(SITE_NAME, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
    })
    source = context.data_sources.add_pandas(SOURCE_NAME)
    for asset in (TABLE_ASSET, COUNTS_ASSET):
        source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe("whole")
    return context


def run_checkpoint(context, asset_name: str, suite: gx.ExpectationSuite, frame: pd.DataFrame):
    """Validate ``frame`` against ``suite`` and update Data Docs.

    Returns (suite validation result, path of its Data Docs page or None)."""
    batch = context.data_sources.get(SOURCE_NAME).get_asset(asset_name).get_batch_definition(
        "whole")
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"selftrain-{asset_name}", data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=f"selftrain-{asset_name}",
        validation_definitions=[definition],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs", site_names=[SITE_NAME])],
        result_format=RESULT_FORMAT,
    ))
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    identifier, result = next(iter(outcome.run_results.items()))
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE_NAME)
    url = urls[0]["site_url"] if urls else None
    page = url.removeprefix("file://") if url else None
    return result, page


def describe_failure(item, frame: pd.DataFrame, counts: pd.DataFrame | None,
                     data: DataSettings) -> str:
    """One line in plain words for a failed expectation, with up to 5 offending values."""
    kind = item.expectation_config.type
    kwargs = item.expectation_config.kwargs
    result = item.result or {}
    column = kwargs.get("column")
    where = f"column {column!r}" if column else "table"
    if column == COUNT_COLUMN and counts is not None:
        return _describe_counts(counts, data)
    if kind == "expect_column_to_exist":
        role = "label" if column == data.label_column else "id"
        return f"{where}: missing; data.{role}_column names it as the {role} column"
    if kind == "expect_table_row_count_to_be_between":
        return (f"table: must have between {data.min_rows} and {data.max_rows} rows, "
                f"has {result.get('observed_value')}")
    if kind == "expect_table_column_count_to_be_between":
        return "table: needs at least one feature column besides the id and label columns"
    if item.exception_info and item.exception_info.get("raised_exception"):
        return f"{where}: could not be checked ({item.exception_info.get('exception_message')})"
    if kind == "expect_column_values_to_be_in_type_list":
        return (f"{where}: feature values must be numeric, column has dtype "
                f"{frame[column].dtype}, e.g. {_non_numeric_examples(frame[column])}")
    if kind == "expect_column_values_to_not_be_null":
        return (f"{where}: must not be null or empty (NaN or blank), {_count(result)}; "
                f"{_null_rows_label(column, frame, data)} {_null_row_ids(frame, column, data)}")
    if kind == "expect_column_values_to_be_between":
        return (f"{where}: feature values must be finite (no inf), {_count(result)} "
                f"{_examples(result)}")
    if kind == "expect_column_values_to_be_unique":
        return f"{where}: ids must be unique, duplicated ids {_examples(result)}"
    if kind == "expect_column_values_to_be_in_set":
        allowed = ", ".join(map(str, data.classes or []))
        return (f"{where}: labels must be one of the declared classes [{allowed}] or -1/empty "
                f"for unlabeled, {_count(result)} {_examples(result)}")
    return f"{where}: {kind} failed {_examples(result)}"


def _describe_counts(counts: pd.DataFrame, data: DataSettings) -> str:
    if counts[COUNT_COLUMN].sum() == 0:
        return (f"column {data.label_column!r}: no labeled rows at all; every label is -1 or "
                "empty")
    short = counts[counts[COUNT_COLUMN] < data.min_labeled_per_class]
    listed = ", ".join(f"class {c}: {n}" for c, n in
                       short.head(MAX_EXAMPLES).itertuples(index=False))
    return (f"column {data.label_column!r}: every class needs at least "
            f"{data.min_labeled_per_class} labeled rows, too few in {len(short)} class(es) "
            f"({listed})")


def _count(result: dict) -> str:
    n = result.get("unexpected_count")
    return f"{n} row(s)" if n is not None else "some rows"


def _examples(result: dict) -> str:
    values = list(result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
    return f"e.g. {values}" if values else ""


def _non_numeric_examples(column: pd.Series) -> list:
    converted = pd.to_numeric(column, errors="coerce")
    bad = column[converted.isna() & column.notna()]
    return [_plain(v) for v in bad.unique()[:MAX_EXAMPLES]]


def _null_rows_label(column: str, frame: pd.DataFrame, data: DataSettings) -> str:
    if data.id_column in frame.columns and column != data.id_column:
        return "ids of such rows"
    return "row numbers (0-based)"


def _null_row_ids(frame: pd.DataFrame, column: str, data: DataSettings) -> list:
    rows = frame[frame[column].isna()]
    has_ids = data.id_column in frame.columns and column != data.id_column
    ids = rows[data.id_column] if has_ids else rows.index.to_series()
    return [_plain(v) for v in ids.head(MAX_EXAMPLES)]


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value.item() if hasattr(value, "item") else value
