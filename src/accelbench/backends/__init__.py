"""Runtime registry: name -> "module:attr", imported only when a cell needs it."""

from __future__ import annotations

import importlib

from accelbench.backends.base import Backend

RUNTIMES: dict[str, str] = {
    "eager": "accelbench.backends.torch_eager:EagerBackend",
}


def get_backend(name: str) -> Backend:
    module, _, attr = RUNTIMES[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
