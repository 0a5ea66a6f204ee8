import json
import subprocess
import sys

import pytest

from backbone.cli import build_parser, main

from conftest import PROJECT

SUBCOMMANDS = [
    ["data"], ["data", "synth"], ["data", "validate"], ["data", "analyze"], ["data", "pairs"], ["data", "align"],
    ["train"], ["evaluate"], ["verify"],
]  # fmt: skip


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
    assert "nowhere" in err and "does not exist" in err
    with pytest.raises(SystemExit) as info:
        main(["data", "pairs"])  # missing arguments: usage error
    assert info.value.code == 2


def test_bad_arguments_are_refused_with_what_is_wrong(tmp_path, capsys):
    """Issue 30, defects E and G: a file given as a folder, a folder as a file, a NaN threshold, devices=abc."""
    file = tmp_path / "a.txt"
    file.write_text("x")
    for argv, message in [
        (["data", "align", str(tmp_path), "--cache", str(file)], f"argument --cache: {file} is a file, not a folder"),
        (["data", "analyze", str(tmp_path), "--json", str(tmp_path)], f"--json: {tmp_path} is a folder: name a file"),
        (["verify", "a.jpg", "b.jpg", "--threshold", "nan"], "argument --threshold: 'nan' is not a finite number"),
        (["evaluate", "--threshold", "inf"], "argument --threshold: 'inf' is not a finite number"),
        (["data", "pairs", str(tmp_path), "--out", "p.tsv", "--twin-share", "2"], "--twin-share: 2 is not in [0, 1]"),
    ]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and message in capsys.readouterr().err
    assert main(["train", "--set", "devices=abc"]) == 1
    assert (
        "devices must be 'auto', a number of devices or device indices like '0,1', got 'abc'" in capsys.readouterr().err
    )


def test_data_commands_end_to_end(tiny_synth, tmp_path, capsys):
    out = tmp_path / "p.tsv"
    assert (
        main(
            [
                "data",
                "pairs",
                str(tiny_synth),
                "--n-pairs",
                "20",
                "--out",
                str(out),
                "--triplets",
                str(tmp_path / "t.tsv"),
                "--split",
                "test",
                "--split-fractions",
                "train=0.5,test=0.5",
                "--people-out",
                str(tmp_path / "people.txt"),
            ]
        )
        == 0
    )
    from backbone.data import load_index, split_identities
    from backbone.data.layouts.lfw import read_lfw_people

    split = split_identities(load_index(tiny_synth), {"train": 0.5, "test": 0.5}, seed=0)["test"]
    (people,) = read_lfw_people(tmp_path / "people.txt")  # the split's identities, in LFW's people format
    assert people == {name: len(paths) for name, paths in split.by_identity.items()}
    assert (
        main(
            [
                "data",
                "validate",
                str(tiny_synth),
                "--pairs",
                str(out),
                "--pairs",
                str(tmp_path / "t.tsv"),
                "--strict",
                "--workers",
                "1",
            ]
        )
        == 0
    )
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


def test_train_evaluate_verify_from_the_command_line(tiny_synth, tmp_path, capsys):
    from backbone.data import generate_pairs, load_index, write_pairs

    index = load_index(tiny_synth)
    write_pairs(generate_pairs(index, 40, seed=0), tmp_path / "p.tsv")
    common = [f"data.root={tiny_synth}", f"data.train_pairs={tmp_path / 'p.tsv'}", f"data.val_pairs={tmp_path / 'p.tsv'}",
              "data.test_pairs=null", "data.align.size=64", f"data.cache={tmp_path / 'cache'}", "data.workers=0",
              "model.input_size=64", "epochs=1", "batch_size=8", "steps_per_epoch=2"]  # fmt: skip
    argv = ["train", "--out-dir", str(tmp_path / "run"), "--no-progress"] + [w for c in common for w in ("--set", c)]
    assert main(argv) == 0
    ckpt = tmp_path / "run" / "best.ckpt"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--pairs",
                str(tmp_path / "p.tsv"),
                "--cache",
                str(tmp_path / "cache"),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "auc" in out and (tmp_path / "run" / "metrics_p.json").is_file()
    from backbone.evaluation.scores import read_scores

    scored = read_scores(tmp_path / "run" / "scores_p.tsv")  # what the pair explorer opens
    metrics = json.loads((tmp_path / "run" / "metrics_p.json").read_text())
    assert len(scored.pairs) == 40 and scored.labels.sum() == metrics["same"]
    image = tiny_synth / "solo000" / "solo000_0001.png"
    assert main(["verify", "--checkpoint", str(ckpt), str(image), str(image)]) == 0
    assert "SAME person" in capsys.readouterr().out
    import torch

    assert torch.is_grad_enabled()  # a command must not switch autograd off for the whole process
    assert main(["verify", "--checkpoint", str(tmp_path / "none.ckpt"), str(image), str(image)]) == 1
    assert "checkpoint" in capsys.readouterr().err
    assert main(["verify", "--checkpoint", str(ckpt), str(image), str(tmp_path / "p.tsv")]) == 1
    assert "cannot read image" in capsys.readouterr().err
    assert main(["train", "--set", "loss.regime=magic"]) == 1
    assert "loss.regime must be one of" in capsys.readouterr().err
    diverging = ["train", "--out-dir", str(tmp_path / "diverged"), "--no-progress", "--set", "optim.lr=1e30"]
    assert main(diverging + [w for c in common for w in ("--set", c)]) == 1  # an error, not a traceback
    assert "loss became" in capsys.readouterr().err

    # cross-data: another identity-folder set, no pair file (3 people x 3 images, copied from the twins)
    import shutil

    other = tmp_path / "other"
    for person in ("solo000", "solo001", "twin000a"):
        (other / person).mkdir(parents=True)
        for k in (1, 2, 3):
            shutil.copy(tiny_synth / person / f"{person}_000{k}.png", other / person)
    cross = ["evaluate", "--checkpoint", str(ckpt), "--data", str(other), "--seed", "3",
             "--cache", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    capsys.readouterr()
    assert main(cross) == 0
    assert "18 pairs of other (every matched pair, as many mismatched drawn with seed 3)" in capsys.readouterr().out
    metrics_file, pairs_file = tmp_path / "run" / "metrics_other_seed3.json", tmp_path / "run" / "pairs_other_seed3.tsv"
    metrics = json.loads(metrics_file.read_text())
    assert metrics["same"] == 9 and metrics["different"] == 9  # 3 x C(3, 2) matched, as many mismatched
    assert metrics["generated_pairs"]["seed"] == 3 and metrics["generated_pairs"]["pairs_file"].endswith(
        pairs_file.name
    )
    first = pairs_file.read_bytes()
    assert main(cross) == 0 and pairs_file.read_bytes() == first  # deterministic
    assert main(["evaluate", "--checkpoint", str(ckpt), "--pairs", str(pairs_file), "--root", str(other),
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "again.json"), "--no-progress"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "again.json").read_text())["auc"] == metrics["auc"]


def test_pairs_from_an_lfw_people_file(lfw_root, tmp_path):
    out = tmp_path / "p.tsv"
    argv = ["data", "pairs", str(lfw_root), "--people", str(lfw_root / "peopleDevTrain.txt"), "--split", "val",
            "--split-fractions", "train=0.8,val=0.2", "--n-pairs", "200", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    from backbone.data import read_lfw_people, read_pairs

    (train_people,), (test_people,) = (
        read_lfw_people(lfw_root / "peopleDevTrain.txt"),
        read_lfw_people(lfw_root / "peopleDevTest.txt"),
    )
    names = {p.split("/")[0] for pair in read_pairs(out) for p in (pair.path_a, pair.path_b)}
    assert names <= set(train_people) and not names & set(test_people)


def _parsers(parser, name="backbone"):
    """Every parser of the command line with its command words."""
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {word}")


def test_every_option_says_what_it_is_and_its_default_and_no_markup_leaks(capsys):
    """Each command's help: every argument has a help text, an option with a default shows it,
    and the descriptions (the commands' docstrings) carry no reStructuredText marks."""
    import argparse

    from backbone.cli import build_parser

    undocumented = []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
                if not action.help:
                    undocumented.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
        text = parser.format_help()
        assert "``" not in text and ":class:" not in text and ":func:" not in text, name
    assert undocumented == []
    pairs = dict(_parsers(build_parser()))["backbone data pairs"].format_help()
    assert "(default: 6000)" in " ".join(pairs.split()) and "(default: False)" not in pairs
