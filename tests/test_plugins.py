"""Out-of-tree runtimes join through the `accelbench.runtimes` entry-point group."""

import pytest

from accelbench.backends import get_backend
from accelbench.backends.capabilities import capability_rows
from accelbench.config.runtimes import BUILTIN, runtime_targets
from accelbench.config.specs import RunConfig
from accelbench.errors import UserError


def test_an_installed_entry_point_is_a_runtime(plugin_runtimes):
    assert "degraded" not in runtime_targets()
    with pytest.raises(UserError, match="unknown runtime 'degraded'"):
        RunConfig(runtimes="degraded")
    plugin_runtimes(degraded="degraded_runtime:DegradedBackend")
    assert runtime_targets() == {**BUILTIN, "degraded": "degraded_runtime:DegradedBackend"}
    assert RunConfig(runtimes=("eager", "degraded")).runtimes == ("eager", "degraded")
    assert type(get_backend("degraded")).__name__ == "DegradedBackend"
    rows = [r for r in capability_rows() if r["runtime"] == "degraded"]
    assert rows and any(r["ok"] for r in rows)


def test_a_plugin_may_not_replace_a_builtin(plugin_runtimes):
    plugin_runtimes(eager="degraded_runtime:DegradedBackend")
    with pytest.raises(UserError, match="would replace the built-in runtime eager"):
        runtime_targets()


def test_a_malformed_entry_point_is_named(plugin_runtimes):
    plugin_runtimes(broken="degraded_runtime")
    with pytest.raises(UserError, match=r"entry point broken .* is not 'module:attr'"):
        runtime_targets()
