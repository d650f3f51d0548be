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
    frame, fingerprint = load_and_validate(config, reports_dir)
    assert frame.shape == (1797, 66)
    assert frame["label"].dtype == "int64"
    assert fingerprint == hashlib.sha256(digits_csv.read_bytes()).hexdigest()
    assert (reports_dir / "data_docs" / "index.html").is_file()


# (case name, how to break the good table, config overrides, words the message must hold)
CATALOG = [
    ("missing label column", lambda f: f.drop(columns="label"), {},
     ["column 'label': missing", "data.label_column"]),
    ("missing id column", lambda f: f.drop(columns="id"), {}, ["column 'id': missing"]),
    ("feature entirely null", lambda f: f.assign(f1=np.nan), {},
     ["column 'f1': must not be null", "40 row(s)", "ids of such rows [100, 101, 102"]),
    ("string in numeric column", lambda f: set_value(f, "f2", 5, "abc"), {},
     ["column 'f2': feature values must be numeric", "e.g. ['abc']"]),
    ("NaN feature", lambda f: set_value(f, "f0", 3, np.nan), {},
     ["column 'f0': must not be null", "1 row(s)", "ids of such rows [103]"]),
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
    ("boolean feature", lambda f: f.assign(f0=f["f0"] > 0), {},
     ["column 'f0': feature values must be numeric, column has dtype bool"]),
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
    assert message.startswith(f"{path}: data validation failed")
    for word in words:
        assert word in message
    assert "Traceback" not in message and "expect_" not in message


def test_message_lists_every_failure_and_the_data_docs_page(good_frame, tmp_path, reports_dir,
                                                            make_config):
    frame = set_value(set_value(good_frame, "f0", 3, np.inf), "f1", 4, np.nan)
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
    loaded, _ = load_and_validate(make_config(path, classes=[0, 1, 2, 3]), reports_dir)
    assert loaded["label"].dtype == "int64"
    assert (loaded["label"] == -1).sum() == 8


def test_parquet_table_passes(good_frame, tmp_path, reports_dir, make_config):
    path = tmp_path / "table.parquet"
    good_frame.to_parquet(path)
    frame, fingerprint = load_and_validate(make_config(path), reports_dir)
    assert frame.equals(good_frame)
    assert fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_task_runs_outside_a_flow_without_a_server(good_frame, tmp_path, reports_dir, make_config):
    path = write_csv(good_frame, tmp_path)
    frame, fingerprint = validate_table.fn(make_config(path), reports_dir)
    assert len(frame) == 40 and len(fingerprint) == 64


def test_string_classes_with_minus_one_and_blank_pass(good_frame, tmp_path, reports_dir,
                                                      make_config):
    labels = np.where(good_frame["label"] >= 0, "c" + good_frame["label"].astype(str), "-1")
    frame = good_frame.assign(label=labels)
    frame.loc[32:35, "label"] = None
    path = write_csv(frame, tmp_path)
    loaded, _ = load_and_validate(make_config(path), reports_dir)
    assert set(loaded["label"].dropna()) == {"c0", "c1", "c2", "c3", "-1"}
