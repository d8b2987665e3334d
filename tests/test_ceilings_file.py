"""`accelbench run --ceilings FILE`: ceilings measured once, reused by later runs, recorded."""

import json

import pytest

from accelbench.cli import main
from accelbench.config.specs import RunConfig, expand
from accelbench.errors import UserError
from accelbench.measure.ceilings import load_file
from accelbench.runner import matrix
from accelbench.runner.plan import Planned

CPU = {
    "device": "cpu",
    "matmul_size": 1536,
    "matmul_sizes": {},
    "matmul_tflops": {"float32": 0.5, "bfloat16": 0.2},
    "reasons": {},
    "copy_gbps": 10.0,
}


def test_run_dir_and_env_formats_load(tmp_path):
    run_format = tmp_path / "ceilings.json"
    run_format.write_text(json.dumps({"cpu": CPU}))
    env_format = tmp_path / "env.json"
    env_format.write_text(json.dumps({"python": "3.12", "ceilings": {"cpu": CPU}}))
    assert load_file(str(run_format)) == load_file(str(env_format)) == {"cpu": CPU}


@pytest.mark.parametrize(
    "content,needle",
    [
        (None, "no such file"),
        ("{not json", "is not JSON"),
        (json.dumps({"python": "3.12"}), "holds no matmul ceilings per device"),
        (json.dumps({"tpu": CPU}), "holds no matmul ceilings per device"),
        (json.dumps({"cpu": {"copy_gbps": 1}}), "holds no matmul ceilings per device"),
        (json.dumps([1, 2]), "holds no matmul ceilings per device"),
    ],
)
def test_bad_file_is_one_clear_line(tmp_path, capsys, content, needle):
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=needle):
        load_file(str(path))
    code = main(["run", "--out", str(tmp_path / "r"), "--ceilings", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"accelbench: error: --ceilings {path}") and needle in err
    assert "accelbench env --ceilings" in err
    assert not (tmp_path / "r" / "results.jsonl").exists()


def test_no_ceilings_contradicts_a_file(tmp_path):
    with pytest.raises(UserError, match="contradict"):
        RunConfig(ceilings=False, ceilings_file=str(tmp_path / "c.json"))


def test_reused_ceilings_are_recorded_and_not_measured(tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"ceilings": {"cpu": CPU}}))
    config = RunConfig(ceilings_file=str(path), precisions="fp32", workloads="infer")
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def measured(*_):
        raise AssertionError("a device whose ceilings were given was measured again")

    monkeypatch.setattr("accelbench.runner.isolate.run_isolated", measured)
    cells = [Planned(c) for c in expand(config)]
    matrix.measure_ceilings(config, cells, run_dir, echo=lambda line: None)
    saved = json.loads((run_dir / "ceilings.json").read_text())
    assert saved["cpu"]["matmul_tflops"] == CPU["matmul_tflops"]
    assert saved["cpu"]["source"] == f"reused from {path}"
