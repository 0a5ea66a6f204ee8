import subprocess
import sys

import pytest

from backbone.cli import build_parser, main

from conftest import PROJECT

SUBCOMMANDS = [["data"], ["data", "synth"], ["data", "validate"], ["data", "analyze"], ["data", "pairs"]]


@pytest.mark.parametrize("words", SUBCOMMANDS)
def test_every_subcommand_has_help(words, capsys):
    with pytest.raises(SystemExit) as info:
        main(words + ["--help"])
    assert info.value.code == 0
    assert "usage: backbone" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "backbone", "--version"], capture_output=True, text=True, cwd=PROJECT)
    assert out.returncode == 0 and out.stdout.startswith("backbone ")


def test_errors_go_to_stderr_with_non_zero_exit(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "nowhere" in err and "not a directory" in err
    with pytest.raises(SystemExit) as info:
        main(["data", "pairs"])  # missing arguments: usage error
    assert info.value.code == 2


def test_data_commands_end_to_end(tiny_synth, tmp_path, capsys):
    out = tmp_path / "p.tsv"
    assert main(["data", "pairs", str(tiny_synth), "--n-pairs", "20", "--out", str(out), "--triplets", str(tmp_path / "t.tsv"), "--split", "test", "--split-fractions", "train=0.5,test=0.5"]) == 0
    assert main(["data", "validate", str(tiny_synth), "--pairs", str(out), "--pairs", str(tmp_path / "t.tsv"), "--strict", "--workers", "1"]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out
    assert main(["data", "analyze", str(tiny_synth), "--json", str(tmp_path / "a.json"), "--no-baseline"]) == 0
    assert '"identities": 12' in (tmp_path / "a.json").read_text()
    out.write_text(out.read_text() + "broken line\n")
    assert main(["data", "validate", str(tiny_synth), "--pairs", str(out), "--no-decode"]) == 1
    assert "malformed-line" in capsys.readouterr().err
    assert main(["data", "pairs", str(tiny_synth), "--out", str(out), "--split", "nope"]) == 1
    assert main(["data", "pairs", str(tiny_synth), "--out", str(out), "--split", "a", "--split-fractions", "a:1"]) == 1


def test_parser_builds():
    assert build_parser().prog == "backbone"
