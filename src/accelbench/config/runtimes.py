"""Which runtimes exist: names mapped to "module:attr" targets, without importing any of them.

Built-in runtimes are listed here. Out-of-tree runtimes join through the Python entry-point group
`accelbench.runtimes` of an installed package, e.g. in its pyproject.toml:

    [project.entry-points."accelbench.runtimes"]
    tensorrt = "my_pkg.trt_backend:TensorRTBackend"

Cell processes see the same installed packages, so a plug-in runs in every cell like a built-in.
Nothing here imports torch: configuration validates runtime names against this registry.
"""

from __future__ import annotations

from importlib import metadata

from accelbench.errors import UserError

ENTRY_POINT_GROUP = "accelbench.runtimes"
BUILTIN: dict[str, str] = {
    "eager": "accelbench.backends.eager:EagerBackend",
    "compile": "accelbench.backends.compile:CompileBackend",
    "ort": "accelbench.backends.ort:OrtBackend",
    "ort-fused": "accelbench.backends.ort:OrtFusedBackend",
}


def plugin_runtimes() -> dict[str, str]:
    """Runtimes installed packages declare in the `accelbench.runtimes` entry-point group."""
    out = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ":" not in ep.value:
            raise UserError(
                f"entry point {ep.name} = {ep.value!r} in group {ENTRY_POINT_GROUP} is not "
                "'module:attr': fix the package that declares it"
            )
        if ep.name in BUILTIN:
            raise UserError(
                f"entry point {ep.name} in group {ENTRY_POINT_GROUP} would replace the built-in "
                f"runtime {ep.name}: give the plug-in another name"
            )
        out[ep.name] = ep.value
    return out


def runtime_targets() -> dict[str, str]:
    """Every runtime name -> "module:attr": built-ins, then plug-ins."""
    return {**BUILTIN, **plugin_runtimes()}
