"""`accelbench env`: RAM, the CPU's flags of interest, socket/core topology."""

import json
from pathlib import Path

from accelbench.cli import main
from accelbench.measure.env import cpu_topology, ram_gb


def cpuinfo(cpus: list[tuple[int, int]], flags: str = "fpu avx2") -> str:
    """/proc/cpuinfo text of logical CPUs given as (physical id, core id)."""
    return (
        "\n\n".join(
            f"processor\t: {i}\nphysical id\t: {s}\ncore id\t\t: {c}\nflags\t\t: {flags}"
            for i, (s, c) in enumerate(cpus)
        )
        + "\n\n"
    )


def test_two_sockets_with_hyperthreads():
    text = cpuinfo([(s, c) for _ in range(2) for s in (0, 1) for c in (0, 1, 2)])
    assert cpu_topology(text) == {"cpu_sockets": 2, "cpu_cores": 6, "cpu_logical": 12}


def test_cpus_without_topology_lines_count_as_cores():
    text = "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\nmodel name\t: x\n"
    assert cpu_topology(text) == {"cpu_sockets": 1, "cpu_cores": 2, "cpu_logical": 2}
    assert cpu_topology("") == {"cpu_sockets": None, "cpu_cores": None, "cpu_logical": None}


def test_ram_from_meminfo():
    assert ram_gb("MemTotal:       24683784 kB\nMemFree:  1 kB\n") == 25.3
    assert ram_gb("") is None


def test_env_prints_ram_flags_and_topology(capsys):
    assert main(["env"]) == 0
    info = json.loads(capsys.readouterr().out)
    flags = Path("/proc/cpuinfo").read_text().split("\nflags", 1)[1].split("\n", 1)[0].split()
    assert set(info["cpu_flags"]) <= set(flags)
    assert ("avx2" in info["cpu_flags"]) == ("avx2" in flags)
    assert info["ram_gb"] > 0
    assert 1 <= info["cpu_sockets"] <= info["cpu_cores"] <= info["cpu_logical"]
