"""Matrix presets: small YAML files of RunConfig settings, validated key by key.

`accelbench run --preset NAME` reads presets/NAME.yaml shipped in this package (package data,
so a wheel install has them too); `--matrix FILE` reads any file. Explicit command-line flags
override the file's values.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import fields
from pathlib import Path

import yaml

from accelbench.config.fields import coerce
from accelbench.config.specs import RunConfig
from accelbench.errors import UserError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
NOTE_KEYS = ("description",)  # free text for people; not a setting


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names()) or f"none found in {PRESET_DIR}"
        raise UserError(f"unknown preset '{name}': choose from {known} (or --matrix FILE)")
    return path


def _coerce(key: str, value: object, hint: object) -> object:
    if key == "batch_sizes":  # `auto` is a batch size of its own; 0 is not one
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, int) and not isinstance(v, bool) and v <= 0 for v in items):
            raise UserError(f"key 'batch_sizes' must be positive or auto, got {value!r}")
    return coerce(f"key '{key}'", value, hint)


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
