"""Config trees: dict/JSON/YAML round trips, typed overrides, and clear errors for typos."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from scratchlm.config import (
    apply_overrides,
    from_dict,
    load_config,
    parse_value,
    save_config,
    to_dict,
)
from scratchlm.model.config import ModelConfig
from scratchlm.train.pretrain import PretrainConfig


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    name: Literal["adamw", "sgd"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)
    clip: float | None = 1.0


@dataclass(frozen=True)
class Outer:
    steps: int = 10
    compile: bool = False
    path: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_round_trip_through_dict_and_json(tmp_path) -> None:
    cfg = Outer(steps=3, path="x.npy", inner=Inner(lr=0.5, name="sgd", betas=(0.8, 0.9)))
    assert from_dict(Outer, to_dict(cfg)) == cfg
    save_config(cfg, tmp_path / "c.json")
    assert load_config(Outer, tmp_path / "c.json") == cfg


@dataclass(frozen=True)
class Table:
    numbers: dict[str, float]
    parts: dict[str, Inner]


def test_mappings_convert_each_value_by_type() -> None:
    data = {"numbers": {"loss": 1, "lr": "0.5"}, "parts": {"a": {"lr": 2, "betas": [0.1, 0.2]}}}
    table = from_dict(Table, data)
    assert table == Table({"loss": 1.0, "lr": 0.5}, {"a": Inner(lr=2.0, betas=(0.1, 0.2))})
    assert from_dict(Table, to_dict(table)) == table
    with pytest.raises(ValueError, match=r"numbers must be a mapping, got \[1\]"):
        from_dict(Table, {"numbers": [1], "parts": {}})
    with pytest.raises(ValueError, match="numbers.loss must be a number, got 'low'"):
        from_dict(Table, {"numbers": {"loss": "low"}, "parts": {}})


def test_yaml_values_are_converted_by_field_type(tmp_path) -> None:
    # YAML reads 3e-4 (no dot) as a string and 2 as an int; the annotation decides.
    (tmp_path / "c.yaml").write_text(
        "steps: 1_000\ninner:\n  lr: 3e-4\n  clip: 2\n  betas: [0.9, 0.99]\n"
    )
    cfg = load_config(Outer, tmp_path / "c.yaml")
    assert cfg.steps == 1000 and cfg.inner.lr == 3e-4 and cfg.inner.clip == 2.0
    assert cfg.inner.betas == (0.9, 0.99)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("steps=20", {"steps": 20}),
        ("steps=1e3", {"steps": 1000}),
        ("compile=true", {"compile": True}),
        ("path=None", {"path": None}),
        ("path=data/train.npy", {"path": "data/train.npy"}),
        ("inner.lr=2e-4", {"inner": {"lr": 2e-4}}),
        ("inner.name=sgd", {"inner": {"name": "sgd"}}),
        ("inner.betas=(0.5, 0.6)", {"inner": {"betas": (0.5, 0.6)}}),
        ("inner.clip=null", {"inner": {"clip": None}}),
    ],
)
def test_overrides_parse_by_type(override: str, expected: dict) -> None:
    cfg = apply_overrides(Outer(), [override])
    for key, value in expected.items():
        if isinstance(value, dict):
            for k, v in value.items():
                assert getattr(cfg.inner, k) == v
        else:
            assert getattr(cfg, key) == value


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stepz=3", "valid keys under the top level: steps, compile, path, inner"),
        ("inner.learning_rate=1", "valid keys under inner: lr, name, betas, clip"),
        ("inner.name=adam", "must be one of 'adamw', 'sgd'"),
        ("steps=ten", "must be an integer"),
        ("steps=2.5", "must be an integer"),
        ("compile=maybe", "true or false"),
        ("inner.betas=(1,2,3)", "must have 2 items"),
        ("steps", "section.key=value"),
        ("steps.x=1", "has no sub-keys"),
    ],
)
def test_bad_overrides_raise_clear_errors(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(Outer(), [override])


def test_literal_text_is_never_evaluated() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        parse_value("__import__('os').getcwd()", tuple[int, int], "key")


@dataclass(frozen=True)
class Stage:
    inner: Inner = field(default_factory=lambda: Inner(lr=0.5, name="sgd"))


def test_a_section_given_in_part_keeps_the_rest_of_its_default(tmp_path) -> None:
    # The stage's default section (lr 0.5, sgd), not Inner's own defaults, fills what the file
    # leaves out: a file key and an override of the same key mean the same thing.
    (tmp_path / "c.yaml").write_text("inner:\n  clip: 2.0\n")
    assert load_config(Stage, tmp_path / "c.yaml") == Stage(Inner(0.5, "sgd", (0.9, 0.95), 2.0))
    assert load_config(Stage, None, ["inner.clip=2.0"]) == Stage(
        Inner(0.5, "sgd", (0.9, 0.95), 2.0)
    )


def test_unknown_key_in_file_is_an_error(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text("inner:\n  lr: 1.0\n  momentum: 0.9\n")
    with pytest.raises(ValueError, match="unknown config key inner.momentum"):
        load_config(Outer, tmp_path / "c.yaml")


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("steps: [1,\n")
    with pytest.raises(ValueError, match="cannot parse"):
        load_config(Outer, tmp_path / "bad.yaml")


def test_overrides_before_build_keep_derived_model_fields(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text(
        "model: {vocab_size: 256, context_length: 16, num_layers: 1, d_model: 64, num_heads: 4}\n"
    )
    cfg = load_config(
        PretrainConfig, tmp_path / "c.yaml", ["model.d_model=96", "model.num_heads=2"]
    )
    assert cfg.model == ModelConfig(256, 16, 1, 96, 2)  # d_ff and num_kv_heads follow the overrides


@pytest.mark.parametrize("name", ["cpu-tiny", "tinystories", "gpt2-small"])
def test_presets_load(name: str) -> None:
    from pathlib import Path

    path = Path(__file__).parents[1] / "configs" / f"{name}.yaml"
    cfg = load_config(PretrainConfig, path)
    assert from_dict(PretrainConfig, to_dict(cfg)) == cfg
