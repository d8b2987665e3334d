"""The suite's own setup (tests/conftest.py): what every process it starts inherits, and the
guards that keep the fast tier to unit tests."""

import os
from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")


def test_the_suite_runs_torch_on_one_thread_and_emulates_cpu_bf16():
    import torch

    from accelbench.backends.precision import EMULATE_ENV

    assert os.environ["OMP_NUM_THREADS"] == "1" and torch.get_num_threads() == 1
    assert os.environ[EMULATE_ENV] == "emulated"  # the name conftest.py writes out


def test_a_fast_test_asking_for_the_model_or_starting_python_fails(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_inner="""
        import subprocess
        import sys


        def test_wants_the_model(tiny_model_dir):
            pass


        def test_starts_python():
            subprocess.run([sys.executable, "-c", "pass"], check=True)


        def test_runs_a_tool_that_is_not_python():
            subprocess.run(["true"], check=True)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_wants_the_model uses ?'tiny_model_dir'?: mark it @pytest.mark.slow*",
            "*a test not marked slow started*mark it @pytest.mark.slow*",
        ],
        consecutive=False,
    )
