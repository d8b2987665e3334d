"""Presets and matrix files: every shipped preset is valid, errors name file and key, flags win."""

from pathlib import Path

import pytest

from accelbench.cli import build_parser, config_from_args, main
from accelbench.config.presets import PRESET_DIR, preset_names, read_matrix
from accelbench.config.specs import AUTO_BATCH, RunConfig


def config(*argv: str) -> RunConfig:
    return config_from_args(build_parser().parse_args(["run", *argv]))


@pytest.mark.parametrize("name", preset_names())
def test_shipped_presets_are_valid(name):
    config("--preset", name)


@pytest.mark.parametrize("name", preset_names())
def test_a_preset_with_int8_names_a_runtime_that_runs_it(name):
    """int8 runs on ONNX Runtime or, through torchao, on eager and compile: never a preset
    whose int8 cells are all unsupported by construction."""
    cfg = config("--preset", name)
    if "int8" in cfg.precisions:
        assert any(r.startswith("ort") or r in ("eager", "compile") for r in cfg.runtimes)


def test_expected_presets_ship():
    wanted = {"default", "quick-cpu", "gpu-full", "precision-compare", "latency", "batch-sweep"}
    assert wanted | {"serving"} <= set(preset_names())


def test_serving_preset_serves_every_scenario_in_each_runtime():
    cfg = config("--preset", "serving")
    assert cfg.workloads == ("serve",)
    assert set(cfg.runtimes) == {"eager", "compile", "ort"}
    assert set(cfg.precisions) == {"fp32", "bf16", "int8"}
    assert set(cfg.scenarios) == {"single-stream", "server", "offline"}


def test_serve_knobs_in_a_matrix_file(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "workloads: serve\nscenarios: [server]\nlatency_bound_ms: 20\n"
        "serve_min_time: 2\nserve_min_queries: 800\nserve_max_wait_ms: 0\n"
    )
    cfg = config("--matrix", str(matrix))
    assert (cfg.scenarios, cfg.latency_bound_ms, cfg.serve_max_wait_ms) == (("server",), 20.0, 0.0)
    assert (cfg.serve_min_time, cfg.serve_min_queries) == (2.0, 800)
    assert config("--matrix", str(matrix), "--latency-bound-ms", "5").latency_bound_ms == 5.0


def test_default_preset_is_what_a_plain_run_does():
    assert config("--preset", "default") == RunConfig() == config()


def test_flags_override_the_preset_and_the_preset_overrides_defaults():
    cfg = config("--preset", "batch-sweep", "--precisions", "fp32", "--min-time", "0.5")
    preset = read_matrix(PRESET_DIR / "batch-sweep.yaml")
    assert cfg.precisions == ("fp32",)  # flag
    assert cfg.min_time == 0.5  # flag
    assert cfg.batch_sizes == preset["batch_sizes"]  # preset
    assert cfg.train_steps == preset["train_steps"]  # preset
    assert cfg.seed == RunConfig().seed  # default


def test_epochs_flag_replaces_preset_train_steps(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text("train_steps: 77\n")
    assert config("--matrix", str(matrix)).train_steps == 77
    cfg = config("--matrix", str(matrix), "--epochs", "2")
    assert (cfg.train_steps, cfg.epochs) == (None, 2.0)


def test_comma_lists_sweep_batch_size_and_seq_len():
    cfg = config("--batch-size", "8,32,128", "--seq-len", "64,128")
    assert (cfg.batch_sizes, cfg.seq_lens) == ((8, 32, 128), (64, 128))


def test_auto_batch_size_from_flags_and_files(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text("batch_sizes: [auto, 32]\n")
    assert config("--matrix", str(matrix)).batch_sizes == (AUTO_BATCH, 32)
    assert config("--batch-size", "auto,8").batch_sizes == (AUTO_BATCH, 8)
    assert config("--batch-size", "8,auto").batch_sizes == (8, AUTO_BATCH)
    matrix.write_text("batch_sizes: [32, auto]\n")
    assert config("--matrix", str(matrix)).batch_sizes == (32, AUTO_BATCH)


def test_scalar_accepted_for_a_list_key(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text("batch_sizes: 16\nprecisions: fp32\nmin_time: 1\n")
    cfg = config("--matrix", str(matrix))
    assert (cfg.batch_sizes, cfg.precisions, cfg.min_time) == ((16,), ("fp32",), 1.0)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("batchsize: 8\n", "unknown key 'batchsize' (did you mean 'batch_sizes'?)"),
        (
            "batch_sizes: [8, big]\n",
            "key 'batch_sizes' must be a whole number, auto, or a list of them",
        ),
        ("min_time: fast\n", "key 'min_time' must be a number, got 'fast'"),
        ("synthetic: 1\n", "key 'synthetic' must be true or false"),
        ("seed: true\n", "key 'seed' must be a whole number"),
        ("precisions: [fp32, fp4]\n", "unknown precision 'fp4'"),
        ("batch_sizes: [0]\n", "key 'batch_sizes' must be positive or auto, got [0]"),
        ("- fp32\n", "expected a mapping of settings, got list"),
        ("precisions: [fp32\n", "not valid YAML"),
    ],
)
def test_matrix_errors_name_file_and_key(capsys, tmp_path, text, needle):
    matrix = tmp_path / "bad.yaml"
    matrix.write_text(text)
    code = main(["run", "--matrix", str(matrix), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"accelbench: error: {matrix}: ")
    assert needle in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_unknown_preset_lists_the_known(capsys, tmp_path):
    code = main(["run", "--preset", "fastest", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown preset 'fastest': choose from" in err
    assert "quick-cpu" in err


def test_preset_and_matrix_are_exclusive(capsys):
    code = main(["run", "--preset", "quick-cpu", "--matrix", str(Path("x.yaml"))])
    assert code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_missing_matrix_file(capsys, tmp_path):
    code = main(["run", "--matrix", str(tmp_path / "none.yaml")])
    assert code == 2
    assert "cannot read matrix file" in capsys.readouterr().err
