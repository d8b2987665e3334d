"""accelbench: speed and entity F1 of BERT NER across devices, precisions and runtimes.

From Python: `accelbench.run(...)`, `accelbench.load(path)`, `accelbench.compare(base, new)`
(see accelbench.api); they are imported on first use, so `import accelbench` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Results", "__version__", "compare", "load", "run"]

if TYPE_CHECKING:
    from accelbench.api import Results, compare, load, run


def __getattr__(name: str):
    if name in ("run", "load", "compare", "Results"):
        from accelbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'accelbench' has no attribute {name!r}")
