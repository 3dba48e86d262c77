"""`shapecalc --help` and every command's help end with one example line, and each example runs
as written (train's with options added that keep it to a second: synthetic data, no files)."""

from __future__ import annotations

import shlex

import pytest

from shapecalc.cli import COMMANDS, main

#: What train's example needs added to finish in a test: no data files, a few images, no run folder.
TRAIN_QUICK = ["--synthetic", "--device", "cpu", "--limit-train", "256", "--limit-test", "64",
               "--epochs", "1", "--no-save"]


def help_text(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def example_of(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[-1].startswith("Example: shapecalc "), lines[-1]
    assert text.lower().count("example") == 1, text  # one example, the last line
    return lines[-1].removeprefix("Example: ")


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_ends_with_one_example_that_runs(command, capsys, tmp_path, monkeypatch):
    text = help_text(capsys, *([command] if command else []))
    argv = shlex.split(example_of(text))
    assert argv[0] == "shapecalc" and (command is None or argv[1] == command)
    if argv[1] == "train":
        pytest.importorskip("torch")
        argv = [a for a in argv if a not in ("--out", "runs/lenet")] + TRAIN_QUICK
        argv[argv.index("--epochs") + 1] = "1" if argv.count("--epochs") == 1 else argv[argv.index("--epochs") + 1]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv[1:])
    out, err = capsys.readouterr()
    # check's example is a model that does not fit: exit 1 with the diagnosis, never an error line.
    assert done.value.code == (1 if argv[1] == "check" else 0), err
    assert "error" not in err, err
    assert out or err
