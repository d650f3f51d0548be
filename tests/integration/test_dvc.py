"""The DVC project with the real ``dvc`` command, in a temporary git repository.

Two starting states are built once per module: the project after its first ``dvc repro``
(``baseline``) and after a second table was added and reproduced (``with_own_table``).
Every test that changes anything works on a private copy of one of them, so the tests
run in any order and none sees another's changes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from selftrain.offline import TELEMETRY_OFF

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
COPIED = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "data/.gitignore",
          "selftrain", "tasks", "flows", "serving")
FAST = {"max_rounds": 1, "patience": 1}


class Repo:
    """A temporary project: its root, the environment of its commands, a private store."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env

    def run(self, *args: str, ok: bool = True) -> str:
        proc = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert (proc.returncode == 0) == ok, f"{args} exited {proc.returncode}:\n{out}"
        return out

    def dvc(self, *args: str, ok: bool = True) -> str:
        return self.run(str(Path(sys.executable).parent / "dvc"), *args, ok=ok)

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)

    def set_params(self, section: str, **values) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        params[section].update(values)
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def dvc_with_broken(self, path: str, broken: str, *args: str) -> str:
        """``dvc *args`` while ``path`` holds ``broken``: it must fail; the file is restored."""
        target = self.root / path
        good = target.read_text()
        target.write_text(broken)
        try:
            return self.dvc(*args, ok=False)
        finally:
            target.write_text(good)

    def metrics(self) -> dict:
        return json.loads((self.root / "metrics/metrics.json").read_text())

    def snapshot(self) -> dict[str, bytes]:
        """Bytes of the outputs and the model store: bad input must leave them untouched."""
        files = [self.root / p for p in ("metrics/metrics.json", "metrics/rounds.csv",
                                         "reports/rounds.png", "dvc.lock")]
        store = Path(self.env["BENTOML_HOME"]) / "models"
        files += sorted(p for p in store.rglob("*") if p.is_file())
        return {str(p): p.read_bytes() for p in files}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_env(tmp: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BENTOML_"))}
    env.update({
        "HOME": str(tmp / "home"),  # the default remote is ~/.cache/selftrain/dvc-remote
        "PYTHONPATH": str(tmp / "repo"),  # run the copied code, not the editable install
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_LOGGING_LEVEL": "WARNING", "BENTOML_HOME": str(tmp / "bentoml"),
        **TELEMETRY_OFF,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    })
    return env


@pytest.fixture(scope="module")
def baseline(prefect_api, tmp_path_factory) -> tuple[Repo, str]:
    """The project's DVC files and code in a fresh git repo with small training settings,
    after its first ``dvc repro`` (committed), and that command's output."""
    project = new_repo(prefect_api, tmp_path_factory.mktemp("dvc"))
    first = project.dvc("repro")
    project.commit("baseline")
    return project, first


@pytest.fixture(scope="module")
def with_own_table(baseline, tmp_path_factory) -> tuple[Repo, str]:
    """The baseline plus a table of one's own selected by ``data.path``, reproduced and
    committed, and the output of that ``dvc repro``."""
    project = copy_repo(baseline[0], tmp_path_factory.mktemp("dvc-own"))
    table = project.root / "data/raw/mine.csv"
    rows = (project.root / "data/raw/digits.csv").read_text().splitlines()
    table.write_text("\n".join(rows[:1001]) + "\n")
    project.dvc("add", "data/raw/mine.csv")
    project.set_params("data", path="data/raw/mine.csv")
    out = project.dvc("repro")
    project.commit("own table")
    return project, out


@pytest.fixture
def repo(baseline, tmp_path) -> Repo:
    return copy_repo(baseline[0], tmp_path)


@pytest.fixture
def own(with_own_table, tmp_path) -> Repo:
    return copy_repo(with_own_table[0], tmp_path)


def copy_repo(source: Repo, tmp: Path) -> Repo:
    """A private copy of a project: the repo with its DVC cache, the home with the default
    remote, and the model store (Prefect's home starts empty)."""
    for part in ("repo", "home", "bentoml"):
        if (source.root.parent / part).exists():
            shutil.copytree(source.root.parent / part, tmp / part, symlinks=True)
    return Repo(tmp / "repo", make_env(tmp, source.env["PREFECT_API_URL"]))


def new_repo(prefect_api: str, tmp: Path) -> Repo:
    root = tmp / "repo"
    for name in COPIED:
        src, dst = PROJECT / name, root / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    (tmp / "home").mkdir()
    project = Repo(root, make_env(tmp, prefect_api))
    project.run("git", "init", "-q")
    project.dvc("init", "-q")
    shutil.copy(PROJECT / ".dvc/config", root / ".dvc/config")  # analytics off, the remote
    project.set_params("self_training", **FAST)
    return project


def test_repro_runs_every_stage_then_skips_them_all(baseline, tmp_path):
    repo, out = baseline
    assert "Running stage 'prepare'" in out and "Running stage 'train'" in out
    lock = yaml.safe_load((repo.root / "dvc.lock").read_text())
    table_md5 = lock["stages"]["prepare"]["outs"][0]["md5"]
    assert table_md5 == md5(repo.root / "data/raw/digits.csv")
    metrics = repo.metrics()
    assert metrics["dvc_hash"] == table_md5 and metrics["dvc_tracked"] is True
    assert metrics["dvc_source"] == "dvc.lock" and len(metrics["params_hash"]) == 64
    assert (repo.root / "reports/confusion_matrix.png").stat().st_size > 1000
    assert "data/raw/digits.csv" not in repo.run("git", "log", "--name-only", "--format=")

    again = copy_repo(repo, tmp_path).dvc("repro")
    assert "Running stage" not in again
    assert "Stage 'prepare' didn't change, skipping" in again
    assert "Stage 'train' didn't change, skipping" in again


def test_model_metadata_records_dvc_and_params_hashes(baseline):
    repo = baseline[0]
    metrics = repo.metrics()
    script = ("import bentoml,json,sys; m=bentoml.models.get(sys.argv[1]);"
              "print(json.dumps(m.info.metadata, default=str))")
    meta = json.loads(repo.run(sys.executable, "-c", script, metrics["destination"]))
    assert meta["dvc_hash"] == metrics["dvc_hash"]
    assert meta["params_hash"] == metrics["params_hash"]


def test_changed_parameter_would_rerun_only_train(repo):
    repo.set_params("gate", min_accuracy=0.4)
    diff = repo.dvc("params", "diff")
    assert "gate.min_accuracy" in diff and "0.5" in diff and "0.4" in diff
    out = repo.dvc("repro", "--dry")  # what dvc would run; the experiment below really runs
    assert "Stage 'prepare' didn't change, skipping" in out
    assert "Running stage 'train'" in out and "Running stage 'prepare'" not in out
    repo.run("git", "checkout", "-q", "--", "params.yaml")
    assert "Data and pipelines are up to date" in repo.dvc("status")


def test_own_table_is_selected_by_one_parameter(with_own_table):
    repo, out = with_own_table
    table = repo.root / "data/raw/mine.csv"
    assert "Stage 'prepare' didn't change, skipping" in out
    assert "Running stage 'train'" in out and "Running stage 'prepare'" not in out
    metrics = repo.metrics()
    recorded = yaml.safe_load(table.with_name("mine.csv.dvc").read_text())["outs"][0]["md5"]
    assert metrics["dvc_hash"] == recorded == md5(table)
    assert metrics["dvc_source"] == "data/raw/mine.csv.dvc" and metrics["dvc_tracked"] is True
    assert metrics["n_train"] + metrics["n_test"] < 1000
    assert repo.run("git", "ls-files", "data/raw/mine.csv").strip() == ""


def test_changed_data_would_rerun_only_train(own):
    repo = own
    table = repo.root / "data/raw/mine.csv"
    v1 = table.read_text()
    table.write_text("".join(v1.splitlines(keepends=True)[:801]))  # a new version of the table
    repo.dvc("add", "data/raw/mine.csv")
    out = repo.dvc("repro", "--dry")
    assert "Stage 'prepare' didn't change, skipping" in out
    assert "Running stage 'train'" in out and "Running stage 'prepare'" not in out
    repo.run("git", "checkout", "-q", "--", "data/raw/mine.csv.dvc")
    repo.dvc("checkout", "data/raw/mine.csv.dvc")  # back to the committed version
    assert table.read_text() == v1


def test_experiment_reruns_only_train_and_shows_beside_baseline(repo):
    out = repo.dvc("exp", "run", "-S", "self_training.threshold=0.95")
    assert "Stage 'prepare' didn't change, skipping" in out and "Running stage 'train'" in out
    table = list(csv.DictReader(io.StringIO(repo.dvc("exp", "show", "--csv"))))
    experiments = [row for row in table if row["Experiment"]]
    baseline = [row for row in table if row["typ"] == "baseline" and row["rev"] != "workspace"]
    assert len(experiments) == 1 and len(baseline) == 1, table
    assert experiments[0]["self_training.threshold"] == "0.95"
    assert baseline[0]["self_training.threshold"] == "0.75"
    for row in experiments + baseline:
        assert 0 < float(row["test_accuracy"]) <= 1 and row["dvc_hash"]
    assert yaml.safe_load((repo.root / "params.yaml").read_text())[
        "self_training"]["threshold"] == 0.95  # exp run writes the workspace's params


def test_metrics_and_plots_show_offline(repo):
    assert "test_accuracy" in repo.dvc("metrics", "show")
    html = repo.root / "dvc_plots/index.html"
    repo.dvc("plots", "show")
    page = html.read_text()
    for part in ("accuracy_by_round", "pseudo_labels_by_round",
                 "static/workspace_reports_rounds.png",
                 "static/workspace_reports_confusion_matrix.png"):
        assert part in page, part
    assert (repo.root / "dvc_plots/static/workspace_reports_rounds.png").stat().st_size > 1000
    shutil.rmtree(repo.root / "dvc_plots")


def test_push_then_pull_into_a_fresh_clone(own):
    repo = own
    assert "Data and pipelines are up to date" in repo.dvc("status")
    repo.dvc("push")
    clone = Repo(repo.root.parent / "clone", repo.env)
    repo.run("git", "clone", "-q", str(repo.root), str(clone.root))
    clone.dvc("pull")
    lock = yaml.safe_load((clone.root / "dvc.lock").read_text())
    assert md5(clone.root / "data/raw/digits.csv") == lock["stages"]["prepare"]["outs"][0]["md5"]
    assert md5(clone.root / "data/raw/mine.csv") == repo.metrics()["dvc_hash"]
    assert "Data and pipelines are up to date" in clone.dvc("status")


def test_param_missing_from_params_yaml_is_named(repo):
    before = repo.snapshot()
    stages = (repo.root / "dvc.yaml").read_text()
    out = repo.dvc_with_broken(
        "dvc.yaml", stages.replace("      - serving\n", "      - serving\n      - train.epochs\n"),
        "repro")
    assert "Parameters 'train.epochs' are missing from 'params.yaml'" in out
    assert repo.snapshot() == before


def test_data_missing_from_cache_and_remote_is_named(repo):
    lost = repo.root / "data/raw/lost.csv"
    lost.write_text("id,label,pixel_0\n1,0,0.5\n")
    repo.dvc("add", "data/raw/lost.csv")
    repo.commit("a table never pushed")
    lost.unlink()
    digest = yaml.safe_load(lost.with_name("lost.csv.dvc").read_text())["outs"][0]["md5"]
    (repo.root / ".dvc/cache/files/md5" / digest[:2] / digest[2:]).unlink()
    before = repo.snapshot()
    out = repo.dvc("pull", ok=False)
    assert "Missing cache files" in out and "data/raw/lost.csv" in out
    assert "failed to pull data" in out
    assert repo.snapshot() == before


def test_corrupt_dvc_file_is_named(own):
    repo = own
    before = repo.snapshot()
    out = repo.dvc_with_broken("data/raw/mine.csv.dvc", "outs: [[[\n", "repro")
    assert "data/raw/mine.csv.dvc' is invalid" in out
    assert repo.snapshot() == before


def test_repro_on_a_table_with_categorical_columns(prefect_api, tmp_path_factory):
    """A repo of its own (no shared state): a customer table with text, booleans, blanks
    and dates goes through ``dvc repro`` and its roles reach the model's metadata."""
    from test_real_tables import churn_table

    project = new_repo(prefect_api, tmp_path_factory.mktemp("dvc-categorical"))
    (project.root / "data/raw").mkdir(parents=True, exist_ok=True)
    churn_table().to_csv(project.root / "data/raw/churn.csv", index=False)
    project.dvc("add", "data/raw/churn.csv")
    project.set_params("data", path="data/raw/churn.csv", id_column="customer",
                       label_column="churned")
    project.set_params("gate", min_gain=-1.0)
    project.commit("churn table")  # a known commit: the model's identity includes it
    out = project.dvc("repro", "train")
    assert "Running stage 'train'" in out
    metrics = project.metrics()
    assert metrics["dvc_tracked"] is True and metrics["promoted"] is True
    script = ("import bentoml,json,sys; m=bentoml.models.get(sys.argv[1]);"
              "print(json.dumps(m.info.metadata['columns']))")
    columns = {c["name"]: c["role"] for c in json.loads(
        project.run(sys.executable, "-c", script, metrics["destination"]))}
    assert columns == {"city": "categorical", "plan": "categorical", "active": "categorical",
                       "age": "numeric", "income": "numeric", "signup": "datetime"}

    # the same table, parameters and code again, in a fresh workspace (as `dvc exp run`
    # makes one, without the last-run ledger): reported, not stored a second time
    shutil.rmtree(project.root / ".selftrain")
    project.dvc("repro", "--force", "train")
    again = project.metrics()
    assert again["promoted"] is False and again["destination"] == metrics["destination"]
    assert "identical to the champion" in again["gate_reasons"][0]
    store = Path(project.env["BENTOML_HOME"]) / "models" / "churn"  # its line
    assert len([p for p in store.iterdir() if p.is_dir()]) == 1
