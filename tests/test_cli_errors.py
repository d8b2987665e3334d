"""Bad input: one line on stderr naming the problem, exit code 2, no traceback, nothing lost."""

import subprocess
import sys

import pytest

from accelbench.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--dataset", "conll:/no/such/dir"], "does not exist"),
        (["--runtimes", "tensorrt-llm"], "unknown runtime 'tensorrt-llm'"),
        (["--devices", "tpu"], "unknown device 'tpu'"),
        (["--precisions", "fp4"], "unknown precision 'fp4'"),
        (["--batch-size", "0"], "batch size must be a positive whole number, auto,"),
        (["--batch-size", "-3"], "batch size must be a positive whole number"),
        (["--batch-size", "big"], "batch size must be a positive whole number"),
        (["--grad-accum", "0"], "--grad-accum must be positive"),
        (["--model", "./no-such-model-dir"], "model directory ./no-such-model-dir does not exist"),
    ],
)
def test_bad_run_input(capsys, tmp_path, argv, needle):
    code, err = run_cli(capsys, "run", "--out", str(tmp_path / "r"), *argv)
    assert code == 2
    assert err.startswith("accelbench: error:")
    assert needle in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "results.jsonl").exists()


def test_unknown_hub_model_offline(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = run_cli(capsys, "run", "--out", str(tmp_path / "r"), "--model", "nobody/nothing")
    assert code == 2
    assert "unknown model 'nobody/nothing'" in err


def test_malformed_conll(capsys, conll_dir, tmp_path):
    (conll_dir / "test.txt").write_text("good O\nbad\n")
    code, err = run_cli(
        capsys, "run", "--out", str(tmp_path / "r"), "--dataset", f"conll:{conll_dir}"
    )
    assert code == 2
    assert f"{conll_dir}/test.txt:2: malformed CoNLL line" in err


def test_report_of_empty_dir(capsys, tmp_path):
    code, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 2
    assert "holds no results" in err


def test_out_dir_with_results_is_not_overwritten(capsys, tmp_path):
    (tmp_path / "results.jsonl").write_text('{"cell_id": "x"}\n')
    code, err = run_cli(capsys, "run", "--out", str(tmp_path))
    assert code == 2
    assert "already holds results" in err
    assert (tmp_path / "results.jsonl").read_text() == '{"cell_id": "x"}\n'


@pytest.mark.slow
def test_console_entry_point_exits_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "accelbench", "run", "--devices", "gpu"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("accelbench: error: unknown device 'gpu': choose from cpu, cuda")


def test_hf_dataset_without_datasets_package(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    code, err = run_cli(capsys, "run", "--out", str(tmp_path / "r"), "--dataset", "hf:conll2003")
    assert code == 2
    assert "pip install 'accelbench[hf]'" in err
    assert len(err.splitlines()) == 1


def test_resume_takes_no_other_run_options(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "--resume", str(tmp_path), "--precisions", "fp32")
    assert code == 2
    assert "continues the run with its own settings (run.json)" in err
    assert len(err.splitlines()) == 1


def test_plan_lists_the_cells_and_runs_nothing(capsys, tmp_path):
    out = tmp_path / "r"
    argv = ["run", "--plan", "--out", str(out), "--workloads", "infer", "--runtimes", "eager,ort"]
    assert main([*argv, "--precisions", "fp32,fp8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "5 cells, 3 can run here, 2 unsupported"
    assert "train eager cpu fp32 dynamic b16 s128" in lines[1] and "reference" in lines[1]
    eager_fp8 = next(line for line in lines if "infer eager cpu fp8" in line)
    assert "unsupported: fp8 needs a CUDA GPU of compute capability >= 8.9" in eager_fp8
    assert sum("runs here" in line for line in lines) == 3
    assert not out.exists()


def test_ctrl_c_exits_130_with_the_resume_hint(capsys, tmp_path, monkeypatch):
    """Ctrl-C while the run waits for its first cell: the run directory is left ready for
    --resume and the message says how."""
    from accelbench.runner import isolate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(isolate, "run_isolated", interrupted)
    out = tmp_path / "r"
    argv = ["run", "--out", str(out), "--workloads", "infer", "--precisions", "fp32"]
    code, err = run_cli(capsys, *argv, "--no-ceilings")
    assert code == 130
    started, message = err.splitlines()
    assert started.startswith("[1/2] train eager cpu fp32")  # the cell it was waiting for
    assert message == (
        f"accelbench: interrupted; no cell was recorded in {out} yet "
        f"(continue with `accelbench run --resume {out}`)"
    )
    assert (out / "run.json").is_file()  # what --resume continues from
    assert not (out / "results.jsonl").exists() or (out / "results.jsonl").read_text() == ""


def test_version(capsys):
    from accelbench import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"accelbench {__version__}"


@pytest.mark.parametrize(
    "argv,help_line",
    [
        (["run", "--bogus"], "(see `accelbench run --help`)"),
        (["list", "--bogus"], "(see `accelbench list --help`)"),
        (["run", "--batch-size", "x"], "(see `accelbench run --help`)"),
        (["bogus"], "(see `accelbench --help`)"),
    ],
)
def test_errors_point_at_the_commands_help(capsys, argv, help_line):
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.endswith(help_line)
    assert "accelbench accelbench" not in err


def test_train_steps_and_epochs_are_mutually_exclusive(capsys, tmp_path):
    out = tmp_path / "r"
    code, err = run_cli(capsys, "run", "--out", str(out), "--train-steps", "5", "--epochs", "1")
    assert code == 2
    assert "--epochs: not allowed with argument --train-steps" in err
    assert not out.exists()
    import accelbench
    from accelbench.errors import UserError

    with pytest.raises(UserError, match="train_steps or epochs, not both"):
        accelbench.run(out=out, train_steps=5, epochs=1)


def test_switch_help_shows_no_default(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    no_ceilings = text.split("--no-ceilings", 2)[2].split("--oom-backoff")[0]
    assert "skip measuring" in no_ceilings
    assert "default" not in no_ceilings


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--dataset", "conll:/no/such/dir"], "does not exist"),
        (["--model", "./no-such-model-dir"], "model directory ./no-such-model-dir does not exist"),
    ],
)
def test_plan_checks_the_inputs_like_run(capsys, tmp_path, argv, needle):
    code = main(["run", "--plan", "--out", str(tmp_path / "r"), *argv])
    captured = capsys.readouterr()
    assert code == 2
    assert needle in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "can run here" not in captured.out


def test_nothing_requested_can_run_stops_before_any_work(capsys, tmp_path):
    out = tmp_path / "r"
    code, err = run_cli(capsys, "run", "--out", str(out), "--precisions", "fp8")
    assert code == 2
    assert "none of the 2 requested cells can run here" in err
    assert "fp8 needs a CUDA GPU of compute capability >= 8.9" in err
    assert not out.exists()  # no run directory, no reference fine-tune
    assert main(["run", "--plan", "--precisions", "fp8"]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("3 cells, 1 can run here, 2 unsupported")  # + the reference
    assert "none of the 2 requested cells can run here" in captured.err


def test_interrupted_before_the_run_directory_exists(tmp_path):
    from accelbench.cli import interrupted

    assert interrupted(tmp_path / "none") == (
        "accelbench: interrupted before the run started: nothing was recorded"
    )
