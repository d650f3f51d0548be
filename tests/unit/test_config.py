"""The one configuration object: defaults, params.yaml, dotted overrides, clear errors."""

import pytest
import yaml

from selftrain import PipelineConfig, load_config
from selftrain.config import ConfigError, dump_config


def test_defaults_without_a_file():
    config = load_config()
    assert config == PipelineConfig()
    assert 0 < config.masking.labeled_fraction <= 1
    # "auto" keeps the forest unless another entry beats it beyond noise (issue 11)
    assert config.self_training.base_estimator == "auto"


def test_file_values_override_defaults_and_keep_the_rest(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 7\nself_training:\n  threshold: 0.9\n")
    config = load_config(path)
    assert config.seed == 7
    assert config.self_training.threshold == 0.9
    assert config.split == PipelineConfig().split


def test_dotted_overrides_apply_on_top_of_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 7\n")
    config = load_config(path, overrides=[
        "seed=11", "masking.labeled_fraction=0.2", "self_training.calibration=sigmoid",
        "data.classes=[cat, dog]", "self_training.teacher=",
    ])
    assert config.seed == 11
    assert config.masking.labeled_fraction == 0.2
    assert config.self_training.calibration == "sigmoid"
    assert config.data.classes == ["cat", "dog"]
    assert config.self_training.teacher is None


def test_dump_and_load_round_trip(tmp_path):
    config = load_config(overrides=["seed=5", "gate.min_gain=0.02"])
    dump_config(config, tmp_path / "params.yaml")
    assert load_config(tmp_path / "params.yaml") == config
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["seed"] == 5


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("self_training.thresold=0.9", "self_training.thresold"),
        ("colour=blue", "colour"),
        ("seed=abc", "seed"),
        ("self_training.max_rounds=many", "self_training.max_rounds"),
        ("self_training.base_estimator=xgboost", "self_training.base_estimator"),
        ("masking.labeled_fraction=0", "masking.labeled_fraction"),
        ("masking.labeled_fraction=1.5", "masking.labeled_fraction"),
        ("split.test_size=1", "split.test_size"),
        ("self_training.threshold=2", "self_training.threshold"),
    ],
)
def test_bad_key_or_value_raises_config_error_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"(?m)^\s*{key}: ") as info:
        load_config(overrides=[override])
    value = override.partition("=")[2]
    assert "unknown key" in str(info.value) or value in str(info.value)


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("masking:\n  labelled_fraction: 0.2\n")
    # the unknown key now also gets a "did you mean" (issue 14)
    with pytest.raises(ConfigError, match=r"masking.labelled_fraction: .*\(unknown key; did "
                       r"you mean masking.labeled_fraction\?\)") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_and_non_mapping_are_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)


def test_override_without_equals_sign_is_refused():
    with pytest.raises(ConfigError, match=r"override 'seed' must look like key=value"):
        load_config(overrides=["seed"])


def test_override_into_a_scalar_is_refused():
    with pytest.raises(ConfigError, match=r"seed is not a section"):
        load_config(overrides=["seed=1", "seed.value=2"])


def test_row_bounds_must_be_ordered():
    with pytest.raises(ConfigError, match=r"min_rows \(50\) exceeds data.max_rows \(10\)"):
        load_config(overrides=["data.min_rows=50", "data.max_rows=10"])


def test_assignment_is_validated():
    config = PipelineConfig()
    with pytest.raises(ValueError, match="threshold"):
        config.self_training.threshold = 3


def test_a_missing_default_params_file_means_the_defaults_but_a_named_one_must_exist(
        tmp_path, monkeypatch):
    from selftrain.config import PARAMS_FILE, ConfigError, load_config, params_file

    monkeypatch.chdir(tmp_path)
    assert params_file(PARAMS_FILE) is None and params_file(None) is None
    assert load_config(PARAMS_FILE) == load_config(None)
    with pytest.raises(ConfigError, match="other.yaml does not exist"):
        load_config("other.yaml")
    PARAMS_FILE.write_text("seed: 7\n")
    assert params_file(PARAMS_FILE) == PARAMS_FILE and load_config(PARAMS_FILE).seed == 7
