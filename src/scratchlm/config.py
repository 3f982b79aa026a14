"""Frozen dataclass configs: to and from dicts, JSON and YAML; typed `section.key=value` overrides.

A config is a tree of frozen dataclasses. `from_dict` builds one from plain data and converts each
value by the field's type annotation: `int`, `float`, `str`, `bool`, `X | None`, `Literal[...]`,
`tuple[...]`, `list[...]`, `dict[str, ...]` and nested dataclasses. Override text goes through
`ast.literal_eval` only where a container or quoted string is expected; it is never evaluated as
code. Unknown keys raise `ValueError` listing the valid ones.

    cfg = load_config(PretrainConfig, "configs/cpu-tiny.yaml", ["optimizer.lr=1e-3",
    "training.steps=50"])

`Command` is how a stage module declares its `scratchlm` subcommand (a config class and a run
function, or plain arguments); `scratchlm.cli` parses, resolves and runs it.
"""

import ast
import copy
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass tree as plain dicts, lists and scalars (tuples become lists, JSON-ready)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, converting each value by its field type.

    Missing keys take the field default; a section given in part takes the rest from the field's
    default section (as an override into it does), not from its class's defaults. An unknown key
    raises ValueError naming the valid keys.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config key {where}{unknown[0]!s}; valid keys under "
            f"{where.rstrip('.') or 'the top level'}: {', '.join(fields)}"
        )
    data = {
        key: {**_default_dict(fields[key]), **value}
        if isinstance(value, dict) and _dataclass_in(hints[key])
        else value
        for key, value in data.items()
    }
    kwargs = {key: _convert(value, hints[key], f"{where}{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{where or 'config'}: {exc}") from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Read a YAML or JSON file (defaults when `path` is None), apply `overrides`, build `cls`.

    Overrides are merged into the file's data before anything is built, so a field the file leaves
    out keeps being derived from the others (e.g. a model's d_ff from an overridden d_model).
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
        try:
            loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
        data = loaded or {}
    return from_dict(cls, merge_overrides(cls, data, overrides))


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the config as indented JSON."""
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """A copy of `cfg` with each `dotted.key=value` applied, the text parsed by field type."""
    return from_dict(type(cfg), merge_overrides(type(cfg), to_dict(cfg), overrides))


def merge_overrides(cls: type, data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the plain `data` for dataclass `cls` with each `dotted.key=value` set in it.

    A section missing from `data` is filled from the field's default before the key is set.
    """
    data = copy.deepcopy(data)
    for item in overrides:
        key, value = parse_override(cls, item)
        *sections, last = key.split(".")
        node, node_cls = data, cls
        for part in sections:
            if not isinstance(node.get(part), dict):
                node[part] = _default_dict(
                    next(f for f in dataclasses.fields(node_cls) if f.name == part)
                )
            node, node_cls = node[part], _dataclass_in(typing.get_type_hints(node_cls)[part])
        node[last] = value
    return data


def parse_override(cls: type, item: str) -> tuple[str, Any]:
    """`dotted.key=value` for dataclass `cls` as (key, value), the text parsed by the key's type."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override {item!r} must look like section.key=value")
    return key, parse_value(text.strip(), key_type(cls, key), key)


def key_type(cls: type, key: str) -> Any:
    """The type annotation of the field `dotted.key` names in dataclass `cls`.

    An unknown key raises ValueError naming the valid keys where the path went wrong.
    """
    parts = key.split(".")
    node_cls = cls
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(node_cls)]
        if part not in names:
            where = ".".join(parts[:depth]) or "the top level"
            raise ValueError(
                f"unknown config key {key!r}; valid keys under {where}: " + ", ".join(names)
            )
        annotation = typing.get_type_hints(node_cls)[part]
        if depth < len(parts) - 1:
            node_cls = _dataclass_in(annotation)
            if node_cls is None:
                raise ValueError(f"config key {'.'.join(parts[: depth + 1])!r} has no sub-keys")
    return annotation


def value_kind(cls: type, key: str) -> Literal["bool", "list", "one"]:
    """What key `key` of `cls` holds: "bool", "list" (tuple or list, also in `X | None`), "one"."""
    annotation = key_type(cls, key)
    if _is_optional(annotation):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation is bool:
        return "bool"
    return "list" if typing.get_origin(annotation) in (tuple, list) else "one"


def check_once(cls: type, given: Sequence[tuple[str, str]]) -> None:
    """Refuse a key that `given` sets to two different values, naming both.

    given: (what the user wrote, the same as `dotted.key=value`) pairs, e.g. a command-line flag
    ("--vocab-size 400", "vocab_size=400") or an override (twice the override's text).
    """
    seen: dict[str, tuple[str, Any]] = {}
    for shown, item in given:
        key, value = parse_override(cls, item)
        if key in seen and seen[key][1] != value:
            raise ValueError(
                f"{key} is given twice, as {seen[key][0]} and as {shown}: give it once"
            )
        seen.setdefault(key, (shown, value))


def config_yaml(cfg: Any) -> str:
    """The config as YAML, in field order; `load_config` reads it back to an equal config."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _default_dict(f: dataclasses.Field) -> dict[str, Any]:
    """The plain data of field `f`'s default section, for overrides into a section a file omits.

    Keys whose declared default is None are left out: by convention such a field is derived from the
    others when None (a model's d_ff, num_kv_heads), so it must follow the overrides.
    """
    if f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    elif f.default is not dataclasses.MISSING and f.default is not None:
        default = f.default
    else:
        return {}
    unset = {g.name for g in dataclasses.fields(default) if g.default is None}
    return {k: v for k, v in to_dict(default).items() if k not in unset}


def parse_value(text: str, annotation: Any, key: str = "value") -> Any:
    """Convert override text to the type `annotation` names, without evaluating code."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_optional(annotation):
        if text.lower() in _NONE:
            return None
        return parse_value(text, next(a for a in args if a is not type(None)), key)
    if annotation is str:
        return _unquote(text)
    if annotation is bool or annotation is int or annotation is float:
        return _convert(text, annotation, key)
    if origin is Literal:
        value = _unquote(text) if all(isinstance(a, str) for a in args) else _literal(text, key)
        return _convert(value, annotation, key)
    if origin in (tuple, list) or _dataclass_in(annotation) is not None:
        return _convert(_literal(text, key), annotation, key)
    raise ValueError(f"{key}: cannot parse a value of type {annotation}")


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """Check or convert a loaded value (from YAML, JSON or `parse_value`) to `annotation`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_optional(annotation):
        if value is None:
            return None
        return _convert(value, next(a for a in args if a is not type(None)), key)
    sub = _dataclass_in(annotation)
    if sub is not None:
        return from_dict(sub, value, where=f"{key}.")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ValueError(f"{key} must be one of {choices}, got {value!r}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"{key} must be true or false, got {value!r}")
    if annotation is int:
        return _to_int(value, key)
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{key} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{key} must have {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, key) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        items = [v if item is Any else _convert(v, item, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping, got {value!r}")
        item = args[1] if args else Any
        return {k: v if item is Any else _convert(v, item, f"{key}.{k}") for k, v in value.items()}
    if annotation is Any:
        return value
    raise ValueError(f"{key}: unsupported field type {annotation}")


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.replace("_", ""))
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{key} must be an integer, got {value!r}")


def _literal(text: str, key: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"{key}: cannot parse {text!r} as a literal") from None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass type in `annotation` (also inside `X | None`), else None."""
    if _is_optional(annotation):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation if dataclasses.is_dataclass(annotation) else None


@dataclasses.dataclass(frozen=True)
class Flag:
    """A command-line flag that is another way to write `key=value` for config key `key`.

    A bool key makes a flag without a value (it sets true), a tuple or list key one that takes
    several values, any other key one that takes one value.
    """

    key: str
    help: str
    metavar: str | None = None


@dataclasses.dataclass(frozen=True)
class Arg:
    """A plain argument of a command without a config: `add_argument(*names, **options)`."""

    names: tuple[str, ...]
    options: dict[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    """An `Arg`, written like a call to `argparse.ArgumentParser.add_argument`."""
    return Arg(names, options)


# Arguments several commands share.
CHECKPOINT_ARG = arg("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
DEVICE_ARG = arg("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
OUT_DIR_ARG = arg(
    "--out", dest="out_dir", type=Path, required=True, metavar="DIR", help="output directory"
)


@dataclasses.dataclass(frozen=True)
class Command:
    """A `scratchlm` subcommand, as its stage module defines it.

    With a `config` class the command takes `--config FILE`, `KEY=VALUE` overrides, the `flags`
    (aliases of config keys, e.g. {"--vocab-size": Flag("vocab_size", ...)}) and `--print-config`,
    and calls `run(cfg)`, or `run(cfg, resume)` when `resume` (a `--resume latest|PATH` flag).
    Without a config it takes the plain `args` and calls `run(**parsed_args)`. What `run` returns
    is printed (None prints nothing).
    """

    run: Callable[..., Any]
    description: str
    config: type | None = None
    flags: dict[str, Flag] = dataclasses.field(default_factory=dict)
    args: tuple[Arg, ...] = ()
    resume: bool = False
