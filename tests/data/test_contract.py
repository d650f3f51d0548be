"""The data contract: the real digits table passes, each catalogued bad table fails
with a message naming the column, the rule and the offending values."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from tasks.validate import DataValidationError, load_and_validate, validate_table


def write_csv(frame, tmp_path, name="table.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def set_value(frame, column, row, value):
    frame[column] = frame[column].astype(object if isinstance(value, str) else float)
    frame.loc[row, column] = value
    return frame


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory):
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"pixel_{i}" for i in range(64)])
    frame.insert(0, "label", digits.target)
    frame.insert(0, "id", np.arange(len(frame)))
    return write_csv(frame, tmp_path_factory.mktemp("digits"), "digits.csv")


def test_digits_table_passes_and_is_fingerprinted(digits_csv, reports_dir, make_config):
    config = make_config(digits_csv, classes=list(range(10)))
    table = load_and_validate(config, reports_dir)
    frame, fingerprint = table.frame, table.fingerprint
    assert set(table.roles.columns.values()) == {"numeric"}
    assert frame.shape == (1797, 66)
    assert frame["label"].dtype == "int64"
    assert fingerprint == hashlib.sha256(digits_csv.read_bytes()).hexdigest()
    assert (reports_dir / "data_docs" / "index.html").is_file()


# (case name, how to break the good table, config overrides, words the message must hold)
CATALOG = [
    ("missing label column", lambda f: f.drop(columns="label"), {},
     ["column 'label': missing", "data.label_column"]),
    ("missing id column", lambda f: f.drop(columns="id"), {}, ["column 'id': missing"]),
    # was "must not be null": a missing value is allowed now, an entirely empty column is not
    ("feature entirely null", lambda f: f.assign(f1=np.nan), {},
     ["column 'f1': entirely empty (all 40 values are missing)", "data.drop"]),
    # was "feature values must be numeric": now the stray token, its row and the ways out
    ("string in numeric column", lambda f: set_value(f, "f2", 5, "abc"), {},
     ["column 'f2': 98% numbers, but 1 value(s) are not: 'abc' (ids 105)",
      "data.na_values", "data.categorical"]),
    ("too many missing values", lambda f: f.assign(f0=np.where(f.index % 4 == 0, f["f0"],
                                                                np.nan)), {},
     ["column 'f0': 75% of values are missing (30 rows), more than data.max_missing=0.5",
      "ids of such rows [101, 102, 103"]),
    ("stray tokens in a mostly numeric column", lambda f: f.assign(f3=[
        "?" if i in (3, 9) else ("12,5" if i == 20 else str(v)) for i, v in enumerate(f["f3"])]),
     {}, ["column 'f3': 92% numbers, but 3 value(s) are not: '?' (ids 103, 109); "
          "'12,5' (ids 120)", "add them to data.na_values"]),
    ("categorical column with too many categories", lambda f: f.assign(
        f2=[f"c{i}" for i in range(40)]), {"categorical": ["f2"], "max_distinct": 10},
     ["column 'f2': 40 distinct values, more than data.max_distinct=10"]),
    ("unparseable date", lambda f: f.assign(f2=[f"2024-01-{i % 28 + 1:02d}" for i in range(39)]
                                            + ["31/12/2024"]), {"datetime": ["f2"]},
     ["column 'f2': dates must be ISO-8601", "1 row(s)", "31/12/2024"]),
    ("every feature dropped", lambda f: f, {"drop": ["f0", "f1", "f2", "f3"]},
     ["no feature column is left to learn from", "f0 (listed in data.drop)"]),
    ("declared column the table does not have", lambda f: f, {"categorical": ["city"]},
     ["data.categorical names column(s) ['city'] that the table does not have"]),
    ("inf feature", lambda f: set_value(f, "f3", 7, -np.inf), {},
     ["column 'f3': feature values must be finite", "1 row(s)", "[-inf]"]),
    ("duplicate ids", lambda f: f.assign(id=[100, 100, *range(102, 140)]), {},
     ["column 'id': ids must be unique", "[100, 100]"]),
    ("label outside class set", lambda f: set_value(f, "label", 0, 9), {"classes": [0, 1, 2, 3]},
     ["column 'label': labels must be one of the declared classes [0, 1, 2, 3]", "[9"]),
    ("no labeled rows", lambda f: f.assign(label=-1), {},
     ["column 'label': no labeled rows at all"]),
    ("no labeled rows, declared classes", lambda f: f.assign(label=-1), {"classes": [0, 1, 2, 3]},
     ["column 'label': no labeled rows at all"]),
    ("declared class without labeled rows", lambda f: f, {"classes": [0, 1, 2, 3, 4]},
     ["at least 3 labeled rows", "1 class(es) (class 4: 0)"]),
    ("class with too few labeled rows", lambda f: f.assign(label=np.where(
        (f["label"] == 3) & (f.index > 10), -1, f["label"])), {},
     ["at least 3 labeled rows", "class 3: 2"]),
    ("too few rows", lambda f: f.head(12), {},
     ["table: must have between 20 and 5000000 rows, has 12"]),
    ("too many rows", lambda f: f, {"max_rows": 30},
     ["table: must have between 20 and 30 rows, has 40"]),
    ("missing id value", lambda f: set_value(f, "id", 4, np.nan), {},
     ["column 'id': must not be null", "row numbers (0-based) [4]"]),
    ("string label outside string classes", lambda f: f.assign(
        label=np.where(f["label"] >= 0, "c" + f["label"].astype(str), "-1")).pipe(
        lambda g: set_value(g, "label", 0, "zebra")), {"classes": ["c0", "c1", "c2", "c3"]},
     ["declared classes [c0, c1, c2, c3]", "['zebra']"]),
    ("no feature columns", lambda f: f[["id", "label"]], {},
     ["needs at least one feature column"]),
]


@pytest.mark.parametrize(("breaker", "overrides", "words"), [c[1:] for c in CATALOG],
                         ids=[c[0] for c in CATALOG])
def test_bad_table_is_refused_with_its_problem(good_frame, tmp_path, reports_dir, make_config,
                                               breaker, overrides, words):
    path = write_csv(breaker(good_frame.copy()), tmp_path)
    with pytest.raises(DataValidationError) as info:
        load_and_validate(make_config(path, **overrides), reports_dir)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message
    assert "Traceback" not in message and "expect_" not in message


def test_message_lists_every_failure_and_the_data_docs_page(good_frame, tmp_path, reports_dir,
                                                            make_config):
    frame = set_value(set_value(good_frame, "f0", 3, np.inf), "f1", 4, "x")
    path = write_csv(frame.assign(id=0), tmp_path)
    with pytest.raises(DataValidationError) as info:
        load_and_validate(make_config(path), reports_dir)
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "  - column 'id'", "  - column 'f0'", "  - column 'f1'"]
    page = Path(lines[-1].removeprefix("Data Docs: "))
    assert page.is_file() and page.suffix == ".html"
    assert "f0" in page.read_text()


def test_blank_and_minus_one_labels_are_unlabeled(good_frame, tmp_path, reports_dir, make_config):
    frame = good_frame.astype({"label": object})
    frame.loc[32:35, "label"] = None
    path = write_csv(frame, tmp_path)
    loaded = load_and_validate(make_config(path, classes=[0, 1, 2, 3]), reports_dir).frame
    assert loaded["label"].dtype == "int64"
    assert (loaded["label"] == -1).sum() == 8


def test_parquet_table_passes(good_frame, tmp_path, reports_dir, make_config):
    path = tmp_path / "table.parquet"
    good_frame.to_parquet(path)
    table = load_and_validate(make_config(path), reports_dir)
    frame, fingerprint = table.frame, table.fingerprint
    assert frame.equals(good_frame)
    assert fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_task_runs_outside_a_flow_without_a_server(good_frame, tmp_path, reports_dir, make_config):
    path = write_csv(good_frame, tmp_path)
    table = validate_table.fn(make_config(path), reports_dir)
    assert len(table.frame) == 40 and len(table.fingerprint) == 64


def test_string_classes_with_minus_one_and_blank_pass(good_frame, tmp_path, reports_dir,
                                                      make_config):
    labels = np.where(good_frame["label"] >= 0, "c" + good_frame["label"].astype(str), "-1")
    frame = good_frame.assign(label=labels)
    frame.loc[32:35, "label"] = None
    path = write_csv(frame, tmp_path)
    loaded = load_and_validate(make_config(path), reports_dir).frame
    assert set(loaded["label"].dropna()) == {"c0", "c1", "c2", "c3", "-1"}


# Real-shaped tables that the contract refused before column roles and now takes, each
# with the roles it must infer (or that the config declares).
NOW_VALID = [
    ("one missing number (was 'must not be null')", lambda f: set_value(f, "f0", 3, np.nan),
     {}, {"f0": "numeric"}),
    ("boolean feature (was 'must be numeric')", lambda f: f.assign(f0=f["f0"] > 0), {},
     {"f0": "categorical"}),
    ("text category with blanks", lambda f: f.assign(
        city=[None if i % 9 == 0 else ["Paris", "Lyon", "Nice"][i % 3] for i in range(40)]),
     {}, {"city": "categorical"}),
    ("ISO dates", lambda f: f.assign(day=[f"2024-02-{i % 28 + 1:02d}" for i in range(40)]), {},
     {"day": "datetime"}),
    ("string ids", lambda f: f.assign(id=[f"cust-{i:04d}" for i in range(40)]), {},
     {"f1": "numeric"}),
    ("stray tokens declared missing", lambda f: f.assign(f3=[
        "?" if i in (3, 9) else str(v) for i, v in enumerate(f["f3"])]), {"na_values": ["?"]},
     {"f3": "numeric"}),
    ("numbers declared categorical", lambda f: f.assign(zip=(f.index % 5) * 1000),
     {"categorical": ["zip"]}, {"zip": "categorical"}),
    ("free-text column is dropped with the reason", lambda f: f.assign(
        note=[f"called on day {i}, said {i * 7}" for i in range(40)]), {}, {"f0": "numeric"}),
]


@pytest.mark.parametrize(("maker", "overrides", "roles"), [c[1:] for c in NOW_VALID],
                         ids=[c[0] for c in NOW_VALID])
def test_real_shaped_table_passes_with_its_roles(good_frame, tmp_path, reports_dir, make_config,
                                                 maker, overrides, roles):
    path = write_csv(maker(good_frame.copy()), tmp_path)
    table = load_and_validate(make_config(path, **overrides), reports_dir)
    for column, role in roles.items():
        assert table.roles.columns[column] == role
    assert "id" not in table.roles.columns and "label" not in table.roles.columns


def test_free_text_is_dropped_and_reported(good_frame, tmp_path, reports_dir, make_config):
    frame = good_frame.assign(note=[f"called on day {i}" for i in range(40)])
    frame = pd.concat([frame] * 2, ignore_index=True).assign(id=range(80))
    frame["note"] = [f"said {i}" for i in range(80)]
    table = load_and_validate(make_config(write_csv(frame, tmp_path)), reports_dir)
    assert "note" not in table.roles.columns
    assert "identifier-like or free text: 80 distinct values" in table.roles.dropped["note"]
    assert any(line.startswith("dropped: note") for line in table.roles.report())
