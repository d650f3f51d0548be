"""The data contract as a Great Expectations 1.x suite, built in code from the config.

Two batches are validated: the table itself (schema, types, finiteness, ids, label
domain, row count) and a small per-class frame of labeled-row counts, because GX has
no pandas expectation for "each value occurs at least k times". Both results land in
the same Data Docs site and the same error message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from selftrain.columns import ISO_DATE, ColumnRoles, non_numbers
from selftrain.config import DataSettings
from selftrain.labels import is_unlabeled, unlabeled_markers
from selftrain.offline import set_offline_defaults

set_offline_defaults()  # before GX is imported: it reads its analytics switch at import

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


@dataclass(frozen=True)
class Rule:
    """One rule of the contract: its expectation and the plain-words line for a failure
    (given the GX result dict). One declaration per rule: nothing else lists them."""

    expectation: Any
    message: Callable[[dict], str]

    @property
    def key(self) -> tuple[str, str | None]:
        return self.expectation.expectation_type, getattr(self.expectation, "column", None)


def build_table_rules(frame: pd.DataFrame, data: DataSettings,
                      roles: ColumnRoles | None) -> list[Rule]:
    """The table's rules; value checks only for columns that exist, so a missing column
    is reported once instead of as a cascade of errors."""
    rules = [
        Rule(gxe.ExpectColumnToExist(column=data.label_column),
             lambda r: f"column {data.label_column!r}: missing; data.label_column names it as "
                       "the label column"),
        Rule(gxe.ExpectColumnToExist(column=data.id_column),
             lambda r: f"column {data.id_column!r}: missing; data.id_column names it as the id "
                       "column"),
        Rule(gxe.ExpectTableRowCountToBeBetween(min_value=data.min_rows, max_value=data.max_rows),
             lambda r: f"table: must have between {data.min_rows} and {data.max_rows} rows, "
                       f"has {r.get('observed_value')}"),
        Rule(gxe.ExpectTableColumnCountToBeBetween(min_value=3),
             lambda r: "table: needs at least one feature column besides the id and label "
                       "columns"),
    ]
    if data.id_column in frame.columns:
        rules += [
            Rule(gxe.ExpectColumnValuesToNotBeNull(column=data.id_column),
                 lambda r: f"column {data.id_column!r}: must not be null or empty, {_count(r)}; "
                           f"row numbers (0-based) {_null_rows(frame, data.id_column, None)}"),
            Rule(gxe.ExpectColumnValuesToBeUnique(column=data.id_column),
                 lambda r: f"column {data.id_column!r}: ids must be unique, duplicated ids "
                           f"{_examples(r)}"),
        ]
    if data.label_column in frame.columns and data.classes is not None:
        allowed = ", ".join(map(str, data.classes))
        rules.append(Rule(
            gxe.ExpectColumnValuesToBeInSet(
                column=data.label_column,
                value_set=list(data.classes) + unlabeled_markers(data.classes)),
            lambda r: f"column {data.label_column!r}: labels must be one of the declared classes "
                      f"[{allowed}] or -1/empty for unlabeled, {_count(r)} {_examples(r)}"))
    for column, role in (roles.columns.items() if roles else []):
        rules += _role_rules(frame, column, role, data)
    return rules


def _role_rules(frame: pd.DataFrame, column: str, role: str, data: DataSettings) -> list[Rule]:
    """What each role promises: present often enough; numbers numeric and finite;
    categories bounded; dates ISO-8601."""
    where = f"column {column!r}"
    ids = data.id_column if data.id_column in frame.columns else None
    rules = [Rule(gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1 - data.max_missing),
                  lambda r: _missing_message(frame, column, ids, data.max_missing))]
    if role == "numeric":
        rules.append(Rule(gxe.ExpectColumnValuesToBeInTypeList(column=column,
                                                               type_list=NUMERIC_TYPES),
                          lambda r: _stray_tokens_message(frame, column, ids)))
        if pd.api.types.is_numeric_dtype(frame[column].dtype):
            # between() on strings raises inside GX; the type check already reports them
            rules.append(Rule(
                gxe.ExpectColumnValuesToBeBetween(column=column, min_value=-FINITE_BOUND,
                                                  max_value=FINITE_BOUND),
                lambda r: f"{where}: feature values must be finite (no inf), {_count(r)} "
                          f"{_examples(r)}"))
    elif role == "categorical":
        rules.append(Rule(
            gxe.ExpectColumnUniqueValueCountToBeBetween(column=column,
                                                        max_value=data.max_distinct),
            lambda r: f"{where}: {r.get('observed_value')} distinct values, more than "
                      f"data.max_distinct={data.max_distinct}: an identifier or free text? "
                      "List it in data.drop"))
    elif not pd.api.types.is_datetime64_any_dtype(frame[column].dtype):
        rules.append(Rule(
            gxe.ExpectColumnValuesToMatchRegex(column=column, regex=ISO_DATE.pattern),
            lambda r: f"{where}: dates must be ISO-8601 text (YYYY-MM-DD, optionally "
                      f"Thh:mm:ss), {_count(r)} do not parse {_examples(r)}"))
    return rules


def count_labeled(frame: pd.DataFrame, data: DataSettings) -> pd.DataFrame:
    """Labeled rows per class: declared classes (0 when absent) or the labels seen."""
    labels = frame[data.label_column]
    labeled = labels[~is_unlabeled(labels)]
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


def describe_failure(item, rules: dict, counts: pd.DataFrame | None,
                     data: DataSettings) -> str:
    """One line in plain words for a failed expectation, from the rule that declared it."""
    kwargs = item.expectation_config.kwargs
    column = kwargs.get("column")
    if column == COUNT_COLUMN and counts is not None:
        return _describe_counts(counts, data)
    rule = rules.get((item.expectation_config.type, column))
    if item.exception_info and item.exception_info.get("raised_exception"):
        where = f"column {column!r}" if column else "table"
        return f"{where}: could not be checked ({item.exception_info.get('exception_message')})"
    return rule.message(item.result or {})


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


def _missing_message(frame: pd.DataFrame, column: str, ids: str | None,
                     max_missing: float) -> str:
    missing = frame[column].isna()
    where = f"column {column!r}"
    if missing.all():
        return (f"{where}: entirely empty (all {len(frame)} values are missing); list it in "
                "data.drop")
    return (f"{where}: {missing.mean():.0%} of values are missing ({int(missing.sum())} rows), "
            f"more than data.max_missing={max_missing:g}; {_rows_label(ids)} "
            f"{_null_rows(frame, column, ids)}")


def _stray_tokens_message(frame: pd.DataFrame, column: str, ids: str | None) -> str:
    """A numeric column holding a few non-numbers: name each token and its rows, and say
    the two ways out (they mean missing, or the column is a category)."""
    values = frame[column]
    if values.isna().all():
        return _missing_message(frame, column, ids, 0.0)
    if pd.api.types.is_bool_dtype(values.dtype):
        return (f"column {column!r}: booleans in a column declared numeric; leave it out of "
                "data.features' numeric role or list it in data.categorical")
    bad = non_numbers(values)
    shown = []
    for token, rows in list(bad.groupby(bad.astype(str), sort=False).groups.items())[:MAX_EXAMPLES]:
        where = frame.loc[rows[:3], ids] if ids else pd.Series(rows[:3])
        listed = ", ".join(str(_plain(v)) for v in where)
        more = ", ..." if len(rows) > 3 else ""
        shown.append(f"{token!r} ({_rows_label(ids, short=True)} {listed}{more})")
    share = 1 - len(bad) / max(int(values.notna().sum()), 1)
    return (f"column {column!r}: {share:.0%} numbers, but {len(bad)} value(s) are not: "
            f"{'; '.join(shown)}. If they mean missing, add them to data.na_values; if the "
            "column is a category, list it in data.categorical")


def _rows_label(ids: str | None, short: bool = False) -> str:
    if short:
        return "ids" if ids else "rows"
    return "ids of such rows" if ids else "row numbers (0-based)"


def _null_rows(frame: pd.DataFrame, column: str, ids: str | None) -> list:
    rows = frame[frame[column].isna()]
    values = rows[ids] if ids and column != ids else rows.index.to_series()
    return [_plain(v) for v in values.head(MAX_EXAMPLES)]


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value.item() if hasattr(value, "item") else value
