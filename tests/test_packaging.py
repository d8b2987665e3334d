"""What a pip-installed (not editable) accelbench must have: its presets, its console script, cell
processes that start from the installed package."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import FAST, NO_CEILINGS
from helpers import read_records

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new virtual environment with the accelbench wheel installed (dependencies are taken
    from this environment through a .pth file, not from the network)."""
    work = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*build, "-w", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (work / "dist").glob("accelbench-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        env=_env(venv),  # a PYTHONPATH to the checkout would make pip skip the wheel
    )
    return venv


def _env(venv: Path) -> dict[str, str]:
    """This environment without anything that points at the source checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


def _run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "accelbench"), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env=_env(venv),
    )


def test_the_wheel_is_what_runs(fresh_venv, tmp_path):
    code = "import accelbench, pathlib; print(pathlib.Path(accelbench.__file__).resolve())"
    out = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(fresh_venv),
        check=True,
    )
    assert Path(out.stdout.strip()).is_relative_to(fresh_venv.resolve())


def test_installed_list_and_presets(fresh_venv, tmp_path):
    listed = _run(fresh_venv, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "eager" in listed.stdout and "ort-fused" in listed.stdout
    plan = _run(fresh_venv, "run", "--preset", "quick-cpu", "--plan", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("4 cells, 4 can run here")


def test_installed_preset_runs(fresh_venv, tiny_model_dir, tiny_checkpoint, tmp_path):
    argv = ["run", "--preset", "quick-cpu", "--model", str(tiny_model_dir), "--out", "r"]
    argv += ["--checkpoint", str(tiny_checkpoint), "--workloads", "infer", "--precisions", "fp32"]
    done = _run(fresh_venv, *argv, *FAST, *NO_CEILINGS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (rec,) = read_records(tmp_path / "r")  # over --checkpoint: the reference inference pass
    assert rec["status"] == "ok" and rec["role"] == "reference"
    assert rec["spec"]["batch_size"] == 16  # FAST's flag over the preset's 32
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["config"]["train_steps"] == 12 and run["config"]["eval_limit"] == 48
    assert (tmp_path / "r" / "logs" / f"{rec['cell_id']}.log").is_file()
