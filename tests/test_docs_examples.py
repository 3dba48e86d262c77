"""Every example in README.md and docs/ runs, and prints what the page says it prints.

A ```console block is a terminal session: each line starting with ``$ `` is a command, the lines
up to the next ``$ `` are what it prints (stdout and stderr, as a terminal shows them). A
``...`` in an expected line stands for any text: it is used for timings only, and train's
progress lines (printed when a second passes, so as many as the machine is slow) are left out. A ```python block
must run. Blocks of one page run in order, in one temporary folder holding a copy of
``examples/`` (and ``data/fashion-mnist``, the real data, when this machine has it), and the
Python blocks of a page share one namespace, as a reader typing them into one session would.

``shapecalc`` commands run in this process through click's test runner (one interpreter for the
whole page, so the suite stays fast); ``python …`` commands run in a fresh interpreter. Blocks
whose info string says ``gpu`` (```console gpu) need a CUDA GPU and are not run here; a test
checks that they really ask for one.

After a change of output, ``python tests/test_docs_examples.py --update [FILE…]`` rewrites the
expected output of every console block that no longer matches; read the diff before committing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
WILDCARD = "..."
#: ``shapecalc train``'s progress line (printed at sync points, about once a second).
PROGRESS = re.compile(r"epoch \d+/\d+ +\d+%  batch \d+/\d+  ")
DATA_DIR = "data/fashion-mnist"


@dataclass
class Command:
    line: str  # without the "$ "
    expected: str  # the lines printed, joined with "\n"

    def matches(self, printed: str) -> bool:
        want, got = self.expected.splitlines(), printed.splitlines()
        if not any(PROGRESS.match(line) for line in want):
            # train prints a progress line when a second passes within an epoch: a busy machine
            # adds some, as it changes the timings; the page shows the run without them.
            got = [line for line in got if not PROGRESS.match(line)]
        return len(want) == len(got) and all(_line_matches(w, g) for w, g in zip(want, got))


@dataclass
class Block:
    page: Path
    lineno: int
    lang: str
    info: str
    body: str
    start: int  # offsets of the body in the page's text
    end: int
    commands: list[Command] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.lineno}"

    @property
    def needs_gpu(self) -> bool:
        return "gpu" in self.info.split()


def _line_matches(want: str, got: str) -> bool:
    if WILDCARD not in want:
        return want == got
    pattern = ".*".join(re.escape(part) for part in want.split(WILDCARD))
    return re.fullmatch(pattern, got) is not None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        block = Block(page, text.count("\n", 0, m.start()) + 1, m["lang"], m["info"].strip(),
                      m["body"], m.start("body"), m.end("body"))
        if block.lang == "console":
            for part in re.split(r"^\$ ", block.body, flags=re.M)[1:]:
                line, _, printed = part.partition("\n")
                block.commands.append(Command(line, printed.rstrip("\n")))
            assert block.commands, f"{block.where}: a console block without a `$ ` command"
        found.append(block)
    return found


# ---------------------------------------------------------------------------------- running


def _workdir(tmp: Path) -> Path:
    shutil.copytree(REPO / "examples", tmp / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    data = Path(os.environ.get("SHAPECALC_TEST_DATA") or REPO.parent / "shared" / "data" / "fashion-mnist")
    if (data / "train-images-idx3-ubyte.gz").exists():
        (tmp / DATA_DIR).parent.mkdir()
        (tmp / DATA_DIR).symlink_to(data, target_is_directory=True)
    return tmp


def run_command(line: str, cwd: Path) -> str:
    """What a terminal shows for ``line`` run in ``cwd``: stdout and stderr interleaved."""
    argv = shlex.split(line)
    if argv[0] == "shapecalc":
        return _run_in_process(argv[1:])
    if argv[0] == "python":
        done = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": _pythonpath()})
        return (done.stdout + done.stderr).rstrip("\n")
    raise AssertionError(f"examples run `shapecalc` or `python` only, not {argv[0]!r}: {line}")


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)


def _run_in_process(args: list[str]) -> str:
    from click.testing import CliRunner

    from shapecalc.cli import main

    with CliRunner().isolation() as (_, _, mixed):
        with contextlib.suppress(SystemExit):
            main(args)
        sys.stdout.flush()
        sys.stderr.flush()
        return mixed.getvalue().decode("utf-8").rstrip("\n")


@dataclass
class PageRun:
    mismatches: list[tuple[Block, Command, str]] = field(default_factory=list)
    without_data: list[str] = field(default_factory=list)
    commands_run: int = 0
    python_blocks_run: int = 0


def run_page(page: Path, tmp: Path) -> PageRun:
    cwd = _workdir(tmp)
    outcome = PageRun()
    namespace: dict = {"__name__": "__docs__"}
    old = Path.cwd()
    os.chdir(cwd)
    try:
        for block in blocks(page):
            if block.needs_gpu:
                continue
            if block.lang == "python":
                try:
                    exec(compile(block.body, block.where, "exec"), namespace)  # noqa: S102 - our docs
                except Exception:
                    if not outcome.without_data:  # a block after a training run that could not run
                        raise
                    outcome.without_data.append(f"the Python block at {block.where}")
                    continue
                outcome.python_blocks_run += 1
            for command in block.commands:
                if DATA_DIR in command.line and not (cwd / DATA_DIR).exists():
                    outcome.without_data.append(command.line)
                    continue
                printed = run_command(command.line, cwd)
                outcome.commands_run += 1
                if not command.matches(printed):
                    outcome.mismatches.append((block, command, printed))
    finally:
        os.chdir(old)
    return outcome


# ------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_prints_what_the_page_shows(page, tmp_path):
    outcome = run_page(page, tmp_path)
    report = [f"{block.where}: $ {command.line}\n--- the page shows\n{command.expected}\n"
              f"--- it prints\n{printed}" for block, command, printed in outcome.mismatches]
    assert not report, "\n\n".join(report)
    if outcome.without_data:
        pytest.skip(f"real Fashion-MNIST not found; not run: {outcome.without_data}")


def test_the_pages_hold_examples():
    counted = [blocks(page) for page in PAGES]
    consoles = sum(1 for found in counted for b in found if b.lang == "console")
    pythons = sum(1 for found in counted for b in found if b.lang == "python")
    assert consoles >= 30 and pythons >= 5, (consoles, pythons)


def test_only_gpu_examples_are_left_out_and_they_ask_for_a_gpu():
    for page in PAGES:
        for block in blocks(page):
            if block.needs_gpu:
                assert block.lang == "console", block.where
                for command in block.commands:
                    assert "--device cuda" in command.line or "torchrun" in command.line, block.where


def test_every_file_an_example_names_is_shipped_in_examples():
    for page in PAGES:
        for block in blocks(page):
            for command in block.commands:
                for word in shlex.split(command.line):
                    path = word.split(":")[0]
                    if path.startswith("examples/"):
                        assert (REPO / path).exists(), f"{block.where}: {path} is not shipped"


def test_a_block_titled_with_a_file_shows_that_file():
    """```yaml title="examples/tiny.yaml" shows the shipped file, byte for byte."""
    for page in PAGES:
        for block in blocks(page):
            m = re.search(r'title="([^"]+)"', block.info)
            if m:
                assert (REPO / m[1]).read_text(encoding="utf-8") == block.body, block.where


def test_a_wildcard_still_checks_the_rest_of_the_line():
    assert _line_matches("epoch 1  ... images/s", "epoch 1  7,371 images/s")
    progress = "epoch 1/1   60%  batch 5/8  loss 1.7016  acc 0.5242  5,785 images/s  ETA epoch 0 s"
    assert Command("x", "a\nb").matches(f"a\n{progress}\nb")
    assert not Command("x", "a\nb").matches(f"a\n{progress}")
    assert not _line_matches("epoch 1  ... images/s", "epoch 2  7,371 images/s")
    assert not Command("x", "a\nb").matches("a")


# ----------------------------------------------------------------------------------- update


def update(pages: list[Path]) -> None:
    import tempfile

    for page in pages:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run_page(page, Path(tmp))
        text = page.read_text(encoding="utf-8")
        # Rewrite from the end so the offsets of earlier blocks stay valid.
        by_block: dict[int, list[tuple[Command, str]]] = {}
        for block, command, printed in outcome.mismatches:
            by_block.setdefault(block.start, []).append((command, printed))
        for block in sorted((b for b in blocks(page) if b.start in by_block), key=lambda b: -b.start):
            parts = []
            for command in block.commands:
                printed = None
                for c, p in by_block[block.start]:
                    if c.line == command.line and c.expected == command.expected:
                        printed = p
                shown = command.expected if printed is None else printed
                parts.append(f"$ {command.line}\n" + (shown + "\n" if shown else ""))
            text = text[:block.start] + "".join(parts) + text[block.end:]
        page.write_text(text, encoding="utf-8")
        print(f"{page.relative_to(REPO)}: {len(outcome.mismatches)} outputs rewritten, "
              f"{outcome.commands_run} commands run")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--update"]:
        sys.exit("usage: python tests/test_docs_examples.py --update [FILE…]")
    sys.path.insert(0, str(REPO))
    runpy_path = REPO / "tests" / "cpu_torchvision" / "sitecustomize.py"
    if runpy_path.exists():
        import runpy

        runpy.run_path(str(runpy_path))
    update([Path(p).resolve() for p in sys.argv[2:]] or PAGES)
