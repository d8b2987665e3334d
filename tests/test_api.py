"""accelbench from Python: run / load / compare, driven like a user's script or notebook."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import accelbench
from accelbench.api import config_of
from accelbench.config.specs import RunConfig
from accelbench.errors import UserError
from accelbench.report.frame import COLUMNS
from conftest import FAST


def _options(argv: list[str]) -> dict[str, str]:
    """FAST's --flag value pairs as Python keyword arguments."""
    return {argv[i][2:].replace("-", "_"): argv[i + 1] for i in range(0, len(argv), 2)}


@pytest.fixture(scope="module")
def script_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A plain script, no `if __name__ == "__main__":` guard, that runs a matrix."""
    work = tmp_path_factory.mktemp("api")
    options = {k: int(v) if v.isdigit() else float(v) for k, v in _options(FAST).items()}
    script = work / "bench_me.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import accelbench

            res = accelbench.run(
                model={str(tiny_model_dir)!r},
                workloads="infer",
                precisions=["fp32", "bf16"],
                out="runs/a",
                ceilings=False,
                **{options!r},
            )
            df = res.to_pandas()
            print(len(df), sorted(df["status"]))
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=600
    )
    return work / "runs" / "a", proc


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_a_matrix(script_run):
    run_dir, proc = script_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    # stdout holds only what the script printed; progress went to stderr
    assert proc.stdout.splitlines() == ["3 ['ok', 'ok', 'ok']"]
    assert "[1/3] train eager cpu fp32" in proc.stderr
    assert (run_dir / "results.jsonl").is_file()


@pytest.mark.slow
def test_load_to_pandas_and_report(script_run, capsys):
    run_dir, _ = script_run
    res = accelbench.load(run_dir)
    df = res.to_pandas()
    assert list(df.columns) == COLUMNS
    assert list(df["role"]) == ["reference", "cell", "cell"]
    assert df.loc[df["precision"] == "bf16", "speedup"].notna().all()
    assert res.config.precisions == ("fp32", "bf16")
    paths = res.report(run_dir / "rep")
    assert [p.name for p in paths] == ["report.html", "report.md", "summary.csv"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_compare_returns_data_and_prints_nothing(script_run, capsys):
    run_dir, _ = script_run
    cmp = accelbench.compare(accelbench.load(run_dir), run_dir)
    table = cmp.to_pandas()
    assert len(table) == 3
    assert (table["speed_ratio"] == 1.0).all()  # the same samples on both sides
    assert cmp.regressions(5) == []
    assert capsys.readouterr().out == ""
    with pytest.raises(UserError, match="threshold must be >= 0"):
        cmp.regressions(-1)


@pytest.mark.slow
def test_a_run_never_writes_into_a_directory_with_results(script_run):
    run_dir, _ = script_run
    before = (run_dir / "results.jsonl").read_bytes()
    with pytest.raises(UserError, match="already holds results: use --resume"):
        accelbench.run(out=run_dir, precisions="fp32")
    assert (run_dir / "results.jsonl").read_bytes() == before


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"unknown run option 'precision' .*'precisions'"):
        accelbench.run(out=tmp_path / "x", precision="fp32")
    with pytest.raises(UserError, match="resume continues a run with its own settings"):
        accelbench.run(resume=tmp_path, precisions="fp32")
    assert not (tmp_path / "x").exists()


def test_single_values_are_one_element_lists():
    cfg = RunConfig(precisions="fp32", batch_sizes=32, workloads=["infer"])
    assert (cfg.precisions, cfg.batch_sizes, cfg.workloads) == (("fp32",), (32,), ("infer",))
    with pytest.raises(UserError, match="precisions must be a string or a list of them"):
        RunConfig(precisions=3)
    with pytest.raises(UserError, match="min_time must be a number"):
        RunConfig(min_time="soon")


def test_cli_aliases_are_accepted():
    cfg = config_of({"batch_size": [8, 16], "padding": "bucket", "seq_len": 64})
    assert (cfg.batch_sizes, cfg.paddings, cfg.seq_lens) == ((8, 16), ("bucket",), (64,))


@pytest.mark.slow
def test_import_is_light():
    code = "import sys, accelbench.api; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_cli_option_name_works_in_python():
    """Each `accelbench run` option that sets a RunConfig field, named as on the command line
    (`--no-ceilings` -> no_ceilings), gives the same RunConfig as the flag."""
    import argparse

    from accelbench.cli import build_parser, config_from_args

    run = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["run"]
    values = {"--dataset": "conll:/tmp", "--compile-mode": "max-autotune"}
    values |= {"--workloads": "infer", "--runtimes": "ort", "--precisions": "fp32"}
    values |= {"--devices": "cpu", "--padding": "pad-max", "--scenarios": "offline"}
    values |= {"--target-f1": "0.5", "--model": "bert-base", "--checkpoint": "/tmp/ck"}
    values |= {"--lr": "0.001", "--min-time": "0.5", "--seq-len": "64"}
    values |= {"--accuracy-target": "99%", "--fp8-recipe": "rowwise"}
    checked = 0
    for action in run._actions:
        if action.dest not in RunConfig.__dataclass_fields__:
            continue
        flag = action.option_strings[0]
        switch = action.nargs == 0
        text = values.get(flag, "2")
        from_cli = config_from_args(
            build_parser().parse_args(["run", flag] if switch else ["run", flag, text])
        )
        name = flag.removeprefix("--").replace("-", "_")
        if name in RunConfig.__dataclass_fields__ and name != action.dest:
            name = action.dest  # --ceilings FILE is ceilings_file: `ceilings` is the on/off switch
        value = True if switch else action.type(text) if action.type else text
        assert config_of({name: value}) == from_cli, flag
        checked += 1
    assert checked >= 30


def test_negated_switches_in_python():
    assert config_of({"no_ceilings": True}).ceilings is False
    assert config_of({"no_ceilings": False}).ceilings is True
    assert config_of({"no_keep_checkpoint": True}).keep_checkpoint is False
