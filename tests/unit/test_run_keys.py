"""The keys that decide what a run may reuse: the run fingerprint, the round key, the
ledger's "unchanged" check, DVC's recorded hash and the split."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from selftrain.config import PipelineConfig
from selftrain.splits import split_frame
from tasks.fingerprint import fingerprint_run
from tasks.ledger import find_unchanged_run, record_run
from tasks.lineage import recorded_dvc_hash
from tasks.workspace import run_key


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data" / "t.csv"
    path.parent.mkdir()
    path.write_text("id,x,label\n1,0.5,a\n2,0.7,b\n")
    return path


def config_for(path, **self_training) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {"data": {"path": str(path)}, "self_training": self_training})


def test_one_read_gives_the_sha256_and_dvcs_md5(table):
    fingerprint = fingerprint_run(config_for(table))
    assert fingerprint.table_sha256 == hashlib.sha256(table.read_bytes()).hexdigest()
    assert fingerprint.table_md5 == hashlib.md5(table.read_bytes()).hexdigest()


def test_the_signature_follows_the_table_and_the_whole_configuration(table):
    base = fingerprint_run(config_for(table)).signature
    assert fingerprint_run(config_for(table)).signature == base
    gate = config_for(table)
    gate.gate.min_accuracy = 0.9
    assert fingerprint_run(gate).signature != base
    table.write_text(table.read_text() + "3,0.1,a\n")
    assert fingerprint_run(config_for(table)).signature != base


def test_a_missing_table_has_no_digests(tmp_path):
    fingerprint = fingerprint_run(config_for(tmp_path / "nope.csv"))
    assert fingerprint.table_sha256 is None and fingerprint.table_md5 is None


def test_the_round_key_ignores_the_gate_but_not_the_rounds(table):
    sha = fingerprint_run(config_for(table)).table_sha256
    config = config_for(table)
    key = run_key(sha, config)
    config.gate.min_accuracy = 0.9
    config.serving.max_batch_rows = 7
    assert run_key(sha, config) == key
    assert run_key(sha, config_for(table, max_rounds=3)) != key
    assert run_key("0" * 64, config) != key


def test_the_ledger_finds_the_last_run_only_while_nothing_changed(table):
    config = config_for(table)
    assert find_unchanged_run.fn(fingerprint_run(config)) is None
    record_run(fingerprint_run(config), {"destination": "m:1"})
    assert find_unchanged_run.fn(fingerprint_run(config)) == {"destination": "m:1",
                                                               "unchanged": True}
    assert find_unchanged_run.fn(fingerprint_run(config_for(table, max_rounds=3))) is None
    table.unlink()
    assert find_unchanged_run.fn(fingerprint_run(config)) is None


def test_dvcs_recorded_hash_comes_from_the_dvc_file_or_the_lock(table):
    md5 = hashlib.md5(table.read_bytes()).hexdigest()
    assert recorded_dvc_hash(str(table)) == (None, None)
    lock = table.parent.parent / "dvc.lock"  # the project root, the working directory
    lock.write_text(
        f"schema: '2.0'\nstages:\n  prepare:\n    outs:\n    - path: data/t.csv\n"
        f"      md5: {md5}\n")
    assert recorded_dvc_hash(str(table)) == (md5, "dvc.lock")
    (table.parent / "t.csv.dvc").write_text("outs:\n- md5: abc\n  path: t.csv\n")
    assert recorded_dvc_hash(str(table)) == ("abc", str(table.parent / "t.csv.dvc"))
    (table.parent / "t.csv.dvc").write_text(": not yaml [")
    assert recorded_dvc_hash(str(table), root=table.parent) == (None, None)


def test_split_frame_holds_out_labeled_rows_only_stratified_and_seeded():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": range(400), "x": rng.normal(size=400),
                          "label": np.r_[np.repeat([0, 1], 150), np.full(100, -1)]})
    config = PipelineConfig.model_validate({"masking": {"mode": "auto"}})
    splits = split_frame(frame, config)
    assert splits.mode == "real"
    assert (splits.y_test != -1).all() and (splits.y_val != -1).all()
    assert len(splits.y_test) == 75 and abs((splits.y_test == 1).mean() - 0.5) < 0.02
    assert (splits.y_train == -1).sum() == 100
    seen = pd.concat([splits.X_train, splits.X_val, splits.X_test])["x"]
    assert seen.is_unique and len(seen) == 400
    again = split_frame(frame, config)
    assert again.X_test.equals(splits.X_test)
    other = split_frame(frame, PipelineConfig.model_validate({"seed": 1}))
    assert not other.X_test.equals(splits.X_test)


def test_the_workspace_keeps_text_labels_as_json_and_never_pickles(tmp_path):
    from tasks.workspace import Workspace

    ws = Workspace.for_run(tmp_path, "k")
    labels = np.array(["cat", -1, "dog", np.int64(-1)], dtype=object)
    numbers = np.arange(6, dtype=np.float64).reshape(3, 2)
    ws.save_arrays({"y": labels, "X": numbers})
    assert not (ws.root / "y.npy").exists() and (ws.root / "y.json").is_file()
    assert ws.load("y").tolist() == ["cat", -1, "dog", -1]
    assert ws.load("y").dtype == object
    np.testing.assert_array_equal(ws.load("X"), numbers)
    np.load(ws.array_path("X"), allow_pickle=False)  # a plain array, no pickle inside
