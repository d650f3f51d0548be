"""Real-shaped tables end to end: as their owners have them, through ``selftrain run`` (real
Prefect API, GX, BentoML store) and through a real ``bentoml serve`` that takes raw records.
"""

from __future__ import annotations

import math
import os

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_fixtures import free_port, start_server, stop_server, wait_ready
from typer.testing import CliRunner

from benchmarks.real_data import load_table
from flows.cli import app
from selftrain.compiled import TOLERANCE, load_predictor
from selftrain.schema import load_model

pytestmark = pytest.mark.slow
QUICK = ["self_training.max_rounds=3", "gate.min_gain=-1", "gate.max_regression=1"]


def churn_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A customer table: string ids, a text city with blanks, a plan, a boolean, missing
    ages and incomes, a signup date, string labels and 300 rows without a label."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nice", "Lille"], n).astype(object)
    city[rng.random(n) < 0.05] = None
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1])
    active = rng.random(n) < 0.5
    age = np.where(rng.random(n) < 0.08, np.nan, rng.integers(18, 80, n))
    income = np.where(rng.random(n) < 0.05, np.nan, rng.normal(3000, 800, n).round(2))
    signup = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    score = (plan == "basic") * 1.5 + (~active) * 1.2 + (city == "Lille") + rng.normal(0, .6, n)
    label = np.where(score > 1.6, "churn", "stay").astype(object)
    label[rng.permutation(n)[:300]] = None
    return pd.DataFrame({"customer": [f"c-{i:05d}" for i in range(n)], "city": city,
                         "plan": plan, "active": active, "age": age, "income": income,
                         "signup": signup.strftime("%Y-%m-%d"), "churned": label})


def penguins_table() -> pd.DataFrame:
    """Palmer penguins as shipped (species label, island and sex as text, missing rows)."""
    return load_table("penguins").rename_axis("id").reset_index()


def weather_table() -> pd.DataFrame:
    """Seattle's daily weather: an ISO date column and a 5-class label."""
    return load_table("seattle_weather").rename_axis("id").reset_index()


TABLES = {
    "churn": (churn_table, "customer", "churned",
              {"city": "categorical", "active": "categorical", "signup": "datetime",
               "age": "numeric"}),
    "penguins": (penguins_table, "id", "species", {"island": "categorical", "sex": "categorical"}),
    "weather": (weather_table, "id", "weather", {"date": "datetime"}),
}


def run_table(name: str, root, prefect_api: str, monkeypatch) -> dict:
    """``selftrain run`` on table ``name``, written as CSV; the promoted model's entry."""
    make, id_column, label, _ = TABLES[name]
    path = root / f"data/raw/{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    make().to_csv(path, index=False)
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    args = ["run", "--set", f"data.path={path}", "--set", f"data.id_column={id_column}",
            "--set", f"data.label_column={label}", "--set", f"serving.model_name=real-{name}"]
    for item in QUICK:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "promoted" in result.output
    import bentoml

    return bentoml.models.get(f"real-{name}:latest")


@pytest.fixture(scope="module")
def churn_entry(prefect_api, tmp_path_factory):
    """The churn table's promoted entry, trained once by ``selftrain run`` for the module
    (its test below and the server's fixture)."""
    root = tmp_path_factory.mktemp("churn")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return run_table("churn", root, prefect_api, mp)


@pytest.mark.parametrize("name", list(TABLES))
def test_real_shaped_table_trains_and_promotes_with_its_roles(name, prefect_api, workspace,
                                                              monkeypatch, request):
    entry = (request.getfixturevalue("churn_entry") if name == "churn"
             else run_table(name, workspace, prefect_api, monkeypatch))
    _, id_column, label, roles = TABLES[name]
    columns = {c["name"]: c for c in entry.info.metadata["columns"]}
    for column, role in roles.items():
        assert columns[column]["role"] == role, column
    assert id_column not in columns and label not in columns
    model, schema = load_model(entry.path)
    frame = TABLES[name][0]()
    raw = frame.drop(columns=[id_column, label])
    assert list(model.classes_) == sorted(frame[label].dropna().unique())
    labeled = frame[label].notna()
    accuracy = float(np.mean(model.predict(raw[labeled]) == frame.loc[labeled, label]))
    majority = frame.loc[labeled, label].value_counts(normalize=True).iloc[0]
    assert accuracy > majority, (accuracy, majority)  # it learned something from the columns
    # compiled at packaging and verified on the run's held-out rows; the whole raw table
    # (missing values, its own spellings) answered as scikit-learn answers it
    assert entry.info.metadata["inference"]["kind"] == "onnx", entry.info.metadata["inference"]
    predictor = load_predictor(entry.path, entry.info.metadata["integrity"], name)
    np.testing.assert_allclose(predictor.predict_proba(raw), model.predict_proba(raw),
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(predictor.predict(raw), model.predict(raw))


@pytest.fixture(scope="module")
def churn_server(churn_entry, tmp_path_factory):
    """The churn model, trained by ``selftrain run`` and served by a real ``bentoml serve``."""
    entry = churn_entry
    port, log = free_port(), tmp_path_factory.mktemp("churn-server") / "server.log"
    proc = start_server(__import__("pathlib").Path(os.environ["BENTOML_HOME"]), port, log,
                        SELFTRAIN_MODEL_TAG=str(entry.tag))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, entry
    finally:
        stop_server(proc)


def records(frame: pd.DataFrame) -> list[dict]:
    """Raw records as a client holds them: null for missing, true/false, ISO date text."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in row.items()})
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in out]


def test_served_answers_equal_in_process_predict_proba_on_raw_records(churn_server):
    client, entry = churn_server
    frame = churn_table().drop(columns=["customer", "churned"]).head(60)
    response = client.post("/predict", json=records(frame))
    assert response.status_code == 200, response.text
    body = response.json()
    model, _ = load_model(entry.path)
    # served by the compiled form, which packaging verified to 1e-5 and identical labels
    assert client.get("/metadata").json()["predictor"]["kind"] == "onnx"
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(frame),
                               rtol=0, atol=TOLERANCE)
    assert body["labels"] == list(model.predict(frame))


def test_unseen_category_and_missing_values_are_answered(churn_server):
    client, entry = churn_server
    row = {"city": "Marseille", "plan": "enterprise", "active": None, "age": None,
           "income": None, "signup": None}
    response = client.post("/predict", json=[row])
    assert response.status_code == 200, response.text
    model, _ = load_model(entry.path)
    expected = model.predict_proba(pd.DataFrame([row]))
    np.testing.assert_allclose(response.json()["probabilities"], expected, rtol=0,
                               atol=TOLERANCE)
    assert response.json()["labels"] == list(model.predict(pd.DataFrame([row])))


@pytest.mark.parametrize(("change", "words"), [
    ({"age": "forty"}, ["row 1", "'age'", "must be a number or null, got a string"]),
    ({"signup": "31/12/2024"}, ["row 1", "'signup'", "ISO-8601", "31/12/2024"]),
    ({"city": {"name": "Paris"}}, ["row 1", "'city'", "text, a boolean, a number or null"]),
    ({"tenure": 3}, ["row 1", "'tenure'", "is not a feature of this model"]),
])
def test_bad_raw_record_gets_a_422_naming_row_and_field(churn_server, change, words):
    client, _ = churn_server
    good = {"city": "Paris", "plan": "pro", "active": True, "age": 40, "income": 2500.0,
            "signup": "2024-03-01"}
    response = client.post("/predict", json=[good, {**good, **change}])
    assert response.status_code == 422
    for word in words:
        assert word in response.text


def test_missing_column_gets_a_422(churn_server):
    client, _ = churn_server
    response = client.post("/predict", json=[{"city": "Paris", "plan": "pro", "active": True,
                                              "age": 40, "income": 2500.0}])
    assert response.status_code == 422
    assert "row 0" in response.text and "'signup'" in response.text and "missing" in response.text


def test_metadata_lists_each_column_with_role_dtype_and_categories(churn_server):
    client, _ = churn_server
    columns = {c["name"]: c for c in client.get("/metadata").json()["columns"]}
    assert columns["city"]["role"] == "categorical"
    assert set(columns["city"]["categories"]["frequent"]) >= {"Paris", "Lyon", "Nice", "Lille"}
    assert columns["income"]["role"] == "numeric" and columns["income"]["dtype"] == "float64"
    assert 1500 < columns["income"]["fills_missing_with"] < 4500  # the learned median
    assert columns["signup"]["role"] == "datetime"


def test_another_table_never_replaces_a_model_line_of_another_schema(prefect_api, workspace,
                                                                     monkeypatch):
    """The issue's scenario: digits is served under the default name; a churn table run
    with the same name is refused by the gate, and the digits champion stays."""
    import bentoml

    from flows.train import train_pipeline
    from selftrain.config import load_config

    line = ["serving.model_name=shared-line", *QUICK]
    digits = train_pipeline(load_config(None, line))
    assert digits["promoted"], digits["gate_reasons"]
    path = workspace / "data/raw/churn.csv"
    churn_table().to_csv(path, index=False)
    churn = train_pipeline(load_config(None, [*line, f"data.path={path}",
                                              "data.id_column=customer",
                                              "data.label_column=churned"]))
    assert churn["promoted"] is False
    assert any("another problem" in r and r.startswith("FAIL") for r in churn["gate_reasons"])
    assert str(bentoml.models.get("shared-line:latest").tag) == digits["destination"]
