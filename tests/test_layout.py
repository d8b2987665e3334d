"""The house rules of the layout: no import circles among the parts, config imports no other
part, report never reaches torch, a workload or a runtime."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "accelbench"
PARTS = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())


def _part(module: str) -> str | None:
    """The part (subpackage) an accelbench module belongs to; None for top-level modules."""
    names = module.split(".")
    return names[1] if len(names) > 1 and names[1] in PARTS else None


def _imports() -> dict[tuple[str, str], set[str]]:
    """(importing part, imported part) -> the modules that import across, lazy imports too."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        module = ".".join(("accelbench", *path.relative_to(SRC).with_suffix("").parts))
        source = _part(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in {_part(t) for t in targets if t.startswith("accelbench.")}:
                if source and target and target != source:
                    edges[(source, target)].add(module)
    return edges


def test_no_import_circles_among_the_parts():
    edges = _imports()
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start]
        )

    circles = [(a, b, sorted(edges[(a, b)])) for a, b in edges if reaches(b, a, {b})]
    assert circles == []


def _module_imports() -> dict[str, set[str]]:
    """accelbench module -> the accelbench modules it imports when it runs (lazy imports too;
    imports for type checkers only, under `if TYPE_CHECKING:`, and package __init__s left out)."""
    modules = {
        ".".join(("accelbench", *p.relative_to(SRC).with_suffix("").parts)): p
        for p in SRC.rglob("*.py")
        if p.name != "__init__.py"
    }
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[module] |= {n for n in names if n in modules and n != module}
    return graph


def test_no_import_circles_among_the_modules():
    graph = _module_imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start]
        )

    assert sorted(m for m in list(graph) if reaches(m, m, {m})) == []


def test_config_imports_no_other_part():
    assert {b for a, b in _imports() if a == "config"} == set()


def test_report_reads_only_stored_results():
    allowed = {"config", "measure"}
    assert {b for a, b in _imports() if a == "report"} - allowed == {"runner"}
    assert _imports()[("report", "runner")] == {"accelbench.report.frame"}  # runner.store only


@pytest.mark.slow
def test_report_and_compare_work_without_torch(tmp_path):
    """Build a report and a comparison from stored results with torch unimportable."""
    data = Path(__file__).parent / "data" / "results.jsonl"
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "onnxruntime"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, NoTorch())
import shutil, pathlib
import pytest
from accelbench.cli import main
run = pathlib.Path({str(tmp_path)!r}) / "run"
run.mkdir()
shutil.copy({str(data)!r}, run / "results.jsonl")
assert main(["report", str(run)]) == 0
assert main(["compare", str(run), str(run)]) == 0
with pytest.raises(SystemExit) as help_exit:  # argparse prints the help and exits
    main(["report", "--help"])
assert help_exit.value.code == 0
print("all checks ran")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.rstrip().endswith("all checks ran")
    assert (tmp_path / "run" / "report.html").is_file()
    assert (tmp_path / "compare-run-vs-run" / "compare.html").is_file()


def _module_file(module: str) -> Path | None:
    """The source of an accelbench module (a .py file or a package's __init__.py), if any."""
    base = SRC.joinpath(*module.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                names |= set(ast.literal_eval(node.value))  # lazily imported (__getattr__)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_bench_scripts_and_tests_import_what_exists():
    """A module that moves (serving/ left workloads/) breaks no script that nothing runs: every
    `from accelbench.X import name` outside src/ names a module and a name that exist."""
    root = SRC.parents[1]
    missing = []
    for path in sorted([*root.glob("bench/*.py"), *root.glob("tests/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("accelbench")
            ):
                continue
            source = _module_file(node.module)
            if source is None:
                missing.append(f"{path.name}: {node.module}")
                continue
            defined = _top_level_names(source)
            for alias in node.names:
                submodule = _module_file(f"{node.module}.{alias.name}")
                if alias.name not in defined and submodule is None:
                    missing.append(f"{path.name}: {node.module}.{alias.name}")
    assert missing == []
