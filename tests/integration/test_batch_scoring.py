"""``selftrain predict``: a whole table scored offline by the promoted model (a real BentoML
store entry written with its verified ONNX graph), CSV and Parquet, in chunks; rows the
endpoint would refuse go to the side file; bad arguments get one message and exit 2; the
same scoring runs as the ``batch-score`` Prefect flow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from typer.testing import CliRunner

from flows.cli import app
from selftrain.columns import infer_roles, known_categories, learned_medians, tabular_pipeline
from selftrain.compiled import TOLERANCE
from selftrain.lines import record_promotion
from selftrain.record import PackagedModel
from selftrain.schema import FeatureSchema
from tasks.model_store import store_model

LINE = "batch-mixed"


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    """Ids, numbers with gaps, a text category with a rare value and blanks, a boolean, an
    ISO date column, and a 3-class label depending on them."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nice", "Brest"], n, p=[.5, .3, .195, .005])
    city = city.astype(object)
    city[rng.random(n) < 0.05] = None
    active = rng.random(n) < 0.5
    age = np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n).astype(float))
    income = rng.normal(3000, 800, n).round(2)
    signup = (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
              ).strftime("%Y-%m-%d")
    score = np.nan_to_num(age, nan=40) / 40 + active + income / 3000 + rng.normal(0, .3, n)
    return pd.DataFrame({"id": [f"c-{i:05d}" for i in range(n)], "city": city,
                         "active": active, "age": age, "income": income, "signup": signup,
                         "label": np.array(["low", "mid", "high"])[np.digitize(score, [2, 2.8])]})


@pytest.fixture(scope="module")
def promoted():
    """(the in-process model, its store tag, a table to score) for the model line LINE."""
    train = mixed_table(600, 0)
    y = train.pop("label")
    roles = infer_roles(train, exclude=["id"], categorical=["active"])
    model = tabular_pipeline(RandomForestClassifier(50, random_state=0), roles).fit(train, y)
    pre = model.steps[0][1]
    schema = FeatureSchema.from_frame(train[roles.features].iloc[:0], model.classes_, roles,
                                      known_categories(pre), learned_medians(pre))
    held_out = mixed_table(200, 1)[roles.features]
    record = PackagedModel(line=LINE, features=schema, config={"data": {"id_column": "id"}})
    tag = store_model(model, record, held_out=[held_out])  # as the package task stores it
    record_promotion(LINE, tag, by="test")
    table = mixed_table(500, 2).drop(columns="label")
    table.loc[17, "city"] = "Atlantis"  # unseen: answered, as the endpoint answers it
    return model, tag, table


def run(*args: str):
    result = CliRunner().invoke(app, ["predict", *args, "--config", "absent.yaml"])
    return result


@pytest.fixture(autouse=True)
def params_naming_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "absent.yaml").write_text(f"serving:\n  model_name: {LINE}\n")


def assert_scores_equal(model, table: pd.DataFrame, out: pd.DataFrame) -> None:
    rows = table.iloc[out["row"].to_numpy()]
    np.testing.assert_array_equal(out["id"].to_numpy(), rows["id"].to_numpy())
    want = model.predict_proba(rows)
    got = out[[f"proba_{c}" for c in model.classes_]].to_numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(out["label"].to_numpy(), model.predict(rows))


def test_a_csv_is_scored_and_bad_rows_go_to_the_side_file(promoted, tmp_path):
    model, _, table = promoted
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    text = path.read_text().splitlines()
    bad = {3: ("age", "abc"), 7: ("signup", "yesterday"), 9: ("income", "1e39")}
    header = text[0].split(",")
    for row, (field, value) in bad.items():
        cells = text[row + 1].split(",")
        cells[header.index(field)] = value
        text[row + 1] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")

    result = run("--input", str(path), "--output", str(tmp_path / "p.parquet"),
                 "--chunk-rows", "128")
    assert result.exit_code == 0, result.output
    assert "(onnx)" in result.output and "497 of 500 rows" in result.output

    out = pd.read_parquet(tmp_path / "p.parquet")
    assert list(out.columns) == ["row", "id", "label", *[f"proba_{c}" for c in model.classes_]]
    assert set(out["row"]) == set(range(500)) - set(bad)
    assert_scores_equal(model, table, out)

    refused = pd.read_csv(tmp_path / "p.refused.csv")
    assert refused["row"].tolist() == [3, 7, 9]
    assert refused["id"].tolist() == ["c-00003", "c-00007", "c-00009"]
    assert refused["field"].tolist() == ["age", "signup", "income"]
    assert "must be a number or null, got text 'abc'" in refused["reason"][0]
    assert "ISO-8601" in refused["reason"][1] and "out of range" in refused["reason"][2]


def test_a_parquet_file_is_scored_in_chunks_by_the_tag_given(promoted, tmp_path):
    model, tag, table = promoted
    table.to_parquet(tmp_path / "table.parquet", index=False)
    result = run("--input", str(tmp_path / "table.parquet"), "--output",
                 str(tmp_path / "out.parquet"), "--model", tag, "--chunk-rows", "64",
                 "--refused", str(tmp_path / "bad.csv"))
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["row"].tolist() == list(range(500))
    assert_scores_equal(model, table, out)
    assert len(pd.read_csv(tmp_path / "bad.csv")) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "nowhere.csv", "--output", "p.parquet"], "file not found"),
    (["--input", "table.csv", "--output", "p.csv"], "must be a .parquet file"),
    (["--input", "table.txt", "--output", "p.parquet"], "unsupported file type '.txt'"),
    (["--input", "table.csv", "--output", "p.parquet", "--model", "nope"],
     f"model '{LINE}:nope' is not in the BentoML model store"),
    (["--input", "narrow.csv", "--output", "p.parquet"],
     "lacks the feature column(s) ['income']"),
    (["--input", "table.csv", "--output", "missing/dir/p.parquet"], "does not exist"),
])
def test_bad_arguments_get_one_message_and_exit_2(promoted, tmp_path, args, message):
    _, _, table = promoted
    table.to_csv(tmp_path / "table.csv", index=False)
    table.to_csv(tmp_path / "table.txt", index=False)
    table.drop(columns="income").to_csv(tmp_path / "narrow.csv", index=False)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.parquet").exists()


@pytest.mark.slow
def test_the_batch_score_flow_scores_as_the_command_does(promoted, prefect_api, tmp_path):
    from flows.batch import batch_score_flow

    model, _, table = promoted
    table.to_parquet(tmp_path / "table.parquet", index=False)
    summary = batch_score_flow(str(tmp_path / "table.parquet"), str(tmp_path / "out.parquet"),
                               model_name=LINE)
    assert summary["scored"] == 500 and summary["inference"] == "onnx"
    assert_scores_equal(model, table, pd.read_parquet(tmp_path / "out.parquet"))


def test_the_scheduled_scoring_deployment_names_the_table_and_the_line():
    from flows.batch import batch_score_deployment

    deployment = batch_score_deployment("data/in.parquet", "out/p.parquet", LINE,
                                        cron="15 4 * * *")
    assert deployment.name == "nightly-scoring"
    assert deployment.parameters == {"input_path": "data/in.parquet",
                                     "output_path": "out/p.parquet", "model_name": LINE}
    assert deployment.schedules[0].schedule.cron == "15 4 * * *"
    assert deployment.entrypoint == "flows.batch.batch_score_flow"
