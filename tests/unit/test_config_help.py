"""The configuration explains itself: every key listed, typos answered, inert keys named."""

import pytest

from selftrain.config import (
    ConfigError,
    PipelineConfig,
    inert_settings,
    load_config,
    parameter_table,
)


def test_parameter_table_lists_every_leaf_key_with_its_default():
    rows = {key: (default, text) for key, default, text in parameter_table()}
    dumped = PipelineConfig().model_dump()
    for key, (default, _) in rows.items():
        section, _, name = key.partition(".")
        assert (dumped[section][name] if name else dumped[section]) == default, key
    assert rows["self_training.base_estimator"][0] == "auto"
    assert "share" in rows["data.max_missing"][1]
    n_leaves = sum(len(v) if isinstance(v, dict) else 1 for v in dumped.values())
    assert len(rows) == n_leaves


def test_a_typo_gets_did_you_mean_and_is_attributed_to_set():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["self_training.tresholds=0.9"])
    text = str(info.value)
    assert "did you mean self_training.threshold?" in text and "set by --set" in text


def test_a_typo_in_a_file_is_not_attributed_to_set(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("self_traning:\n  threshold: 0.9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "did you mean self_training?" in str(info.value)
    assert "set by --set" not in str(info.value)


@pytest.mark.parametrize(("overrides", "words"), [
    (["self_training.threshold=0.9"], "self_training.threshold=0.9 has no effect: criterion is"),
    (["self_training.criterion=threshold", "self_training.k_best=5"],
     "self_training.k_best=5.0 has no effect"),
    (["self_training.teacher=null", "self_training.teacher_weight=0.9"], "teacher is off"),
])
def test_a_parameter_without_effect_is_named(overrides, words):
    assert any(words in w for w in inert_settings(load_config(None, overrides)))


def test_defaults_have_no_inert_warning():
    assert inert_settings(load_config(None)) == []
