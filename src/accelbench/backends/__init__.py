"""Runtimes: one module per runtime (probe, prepare_infer, prepare_train), loaded by name.

The names and their "module:attr" targets live in accelbench.config.runtimes, which imports
nothing heavy; a runtime's module is imported only when a cell or `accelbench list` needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from accelbench.config.runtimes import runtime_targets

if TYPE_CHECKING:
    from accelbench.backends.base import Backend


def get_backend(name: str) -> Backend:
    module, _, attr = runtime_targets()[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
