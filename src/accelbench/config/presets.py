"""Matrix presets: small YAML files of RunConfig settings, validated key by key.

`accelbench run --preset NAME` reads bench/presets/NAME.yaml of the source checkout;
`--matrix FILE` reads any file. Explicit command-line flags override the file's values.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import fields
from pathlib import Path

import yaml

import accelbench
from accelbench.config.specs import AUTO_BATCH, RunConfig
from accelbench.errors import UserError

PRESET_DIR = Path(accelbench.__file__).resolve().parents[2] / "bench" / "presets"
NOTE_KEYS = ("description",)  # free text for people; not a setting


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names()) or f"none found in {PRESET_DIR}"
        raise UserError(f"unknown preset '{name}': choose from {known} (or --matrix FILE)")
    return path


def _kind(hint: object) -> tuple[type, bool, bool]:
    """(element type, is a tuple, may be null) of a RunConfig field's type hint."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True, optional
    return typing.cast(type, hint), False, optional


_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _scalar(value: object, kind: type) -> object:
    """The value as `kind`, or raise TypeError."""
    if isinstance(value, bool) and kind is not bool:
        raise TypeError
    if kind is float and isinstance(value, int | float):
        return float(value)
    if not isinstance(value, kind):
        raise TypeError
    return value


def _coerce(key: str, value: object, hint: object) -> object:
    kind, many, optional = _kind(hint)
    if key == "batch_sizes":  # `auto` is a batch size of its own
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, int) and v <= 0 for v in items):
            raise UserError(f"key 'batch_sizes' must be positive or auto, got {value!r}")
        value = [AUTO_BATCH if v == "auto" else v for v in items]
    if value is None and optional:
        return None
    want = _NAMES.get(kind, kind.__name__)
    try:
        if many:
            items = value if isinstance(value, list) else [value]
            return tuple(_scalar(v, kind) for v in items)
        return _scalar(value, kind)
    except TypeError:
        plural = f"{want} or a list of them" if many else want
        raise UserError(f"key '{key}' must be {plural}, got {value!r}") from None


def read_matrix(path: Path) -> dict[str, object]:
    """The settings a preset or matrix file gives, typed; errors name the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read matrix file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(RunConfig)
    known = [f.name for f in fields(RunConfig)]
    values: dict[str, object] = {}
    try:
        for key, value in data.items():
            if key in NOTE_KEYS:
                continue
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise UserError(f"unknown key '{key}'{hint}")
            values[key] = _coerce(key, value, hints[key])
        RunConfig(**merge(values))  # bad values fail here, with the file named below
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return values


def merge(*layers: dict[str, object]) -> dict[str, object]:
    """Later layers win. A layer giving only one of train_steps / epochs clears the other."""
    out: dict[str, object] = {}
    for layer in layers:
        if "epochs" in layer and "train_steps" not in layer:
            out["train_steps"] = None
        if "train_steps" in layer and "epochs" not in layer:
            out["epochs"] = None
        out.update(layer)
    return out
