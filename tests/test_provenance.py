"""Where results came from: this process's environment, and the one a set of runs was made in."""

import torch

from backbone.provenance import FINGERPRINT, environment, runs_environment

HERE = {"torch": "2.14.1", "cpu_capability": "AVX512", "cpu_threads": 2, "numpy": "2.4.6", "git_commit": "abc"}


def test_this_process_records_every_fingerprint_key():
    env = environment()
    assert set(FINGERPRINT) <= set(env)
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu_threads"] == torch.get_num_threads() and env["torch"] == torch.__version__


def test_the_runs_fingerprint_stands_beside_their_table_not_the_analysis_one():
    run = {**HERE, "cpu_capability": "AVX2", "cpu_threads": 4}
    env = runs_environment({"a": run, "b": dict(run)}, HERE)
    assert (env["cpu_capability"], env["cpu_threads"], env["fingerprint_from"]) == ("AVX2", 4, "runs")
    assert env["numpy"] == "2.4.6"  # versions: the analysis's own
    # runs made in two environments: the key holds both, sorted, and matches neither alone
    mixed = runs_environment({"a": run, "b": {**run, "cpu_threads": 1}}, HERE)
    assert mixed["cpu_threads"] == [1, 4] and mixed["cpu_capability"] == "AVX2"


def test_runs_that_recorded_none_fall_back_to_the_analysis_or_leave_the_fingerprint_unknown():
    assert runs_environment({"a": None, "b": None}, HERE) == {**HERE, "fingerprint_from": "analysis"}
    env = runs_environment({"a": {**HERE, "cpu_threads": 4}, "b": None}, HERE)
    assert env["fingerprint_from"] == "unknown: 1 of 2 runs recorded none (b)"


def test_a_cap_on_onednn_kernels_is_part_of_the_fingerprint(monkeypatch):
    """oneDNN runs the convolutions and picks its kernels by the CPU, whatever ATEN_CPU_CAPABILITY
    says; ONEDNN_MAX_CPU_ISA (or its old name) changes them, so it marks another environment."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert environment()["onednn_isa"] is None  # as in environments recorded before the key existed
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    assert environment()["onednn_isa"] == "AVX2"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert environment()["onednn_isa"] == "AVX512_CORE"
