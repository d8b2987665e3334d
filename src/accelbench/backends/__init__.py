"""Runtime registry: name -> "module:attr", imported only when a cell needs it.

Out-of-tree runtimes join through the environment, which spawned cell processes inherit:
ACCELBENCH_EXTRA_RUNTIMES="name=package.module:Class[,name2=...]".
"""

from __future__ import annotations

import importlib
import os

from accelbench.backends.base import Backend
from accelbench.errors import UserError

RUNTIMES: dict[str, str] = {
    "eager": "accelbench.backends.eager:EagerBackend",
    "compile": "accelbench.backends.compile:CompileBackend",
    "ort": "accelbench.backends.ort:OrtBackend",
    "ort-fused": "accelbench.backends.ort:OrtFusedBackend",
}
EXTRA_ENV = "ACCELBENCH_EXTRA_RUNTIMES"


def _extra() -> dict[str, str]:
    out = {}
    for item in filter(None, (x.strip() for x in os.environ.get(EXTRA_ENV, "").split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise UserError(f"{EXTRA_ENV}: '{item}' is not name=module:attr")
        out[name.strip()] = target.strip()
    return out


def runtimes() -> dict[str, str]:
    """Built-in runtimes plus those named in ACCELBENCH_EXTRA_RUNTIMES."""
    return {**RUNTIMES, **_extra()}


def get_backend(name: str) -> Backend:
    module, _, attr = runtimes()[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
