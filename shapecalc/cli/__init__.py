"""``shapecalc`` command line: a click group whose commands live one to a module.

Commands are imported only when invoked, so ``shapecalc layer`` never pays for the import of
``shapecalc train`` (or torch). Every failure ends as ONE line on stderr and a non-zero exit.
Exit statuses mean the same for every command:

* 0: done (for ``check``: the model fits);
* 1: the model or layer does not fit its input (``ShapeError``, ``ConfigError``), or the work
  itself failed (training, rendering);
* 2: a malformed command line, or a model/spec that could not be loaded (unknown name, missing
  file, syntax error, a Python target that is not a model);
* 130: interrupted (Ctrl-C);
* a closed stdout (``shapecalc check alexnet | head -c1``) is not an error: the command stops
  quietly, without a traceback or "Exception ignored" message, and exits with the answer it
  had already reached (``check``: 0 fits / 1 does not fit; every other command: 0). Whether
  the reader closed the pipe before or after the last line therefore never changes the status.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator, NoReturn

import click

from shapecalc.core.errors import ArgumentError, LayerError, ShapecalcError, SpecError, UsageError
from shapecalc.core.fileio import OutputError
from shapecalc.core.safetext import ClosedStream, PrintableStream, StreamFailed, printable

#: The status the running command has already decided on (``check``'s verdict), used when
#: stdout is closed before it finishes printing; see :func:`set_answer`.
_answer = 0


def set_answer(code: int) -> None:
    """Record the command's exit status before it prints, so a closed pipe keeps it."""
    global _answer
    _answer = code

#: Library parameter → the command-line flag that gives it (errors name what the user typed).
FLAGS = {"input_shape": "--input", "template": "--input", "dtype": "--dtype", "model": "MODEL"}


class ClosedPipe(Exception):
    """stdout was closed by the reader; not an OSError, so click does not turn it into exit 1."""

#: command name → "module:attribute" (relative to this package).
COMMANDS = {
    "layer": "layer:layer",
    "show": "show:show",
    "models": "show:models",
    "graph": "graph:graph",
    "report": "report:report",
    "check": "check:check",
    "memory": "memory:memory",
    "train": "train:train",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        from importlib.util import find_spec

        return [n for n, t in COMMANDS.items() if find_spec(f"{__name__}.{t.split(':')[0]}")]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise ClosedPipe() from None

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name is not None and name not in COMMANDS and not name.startswith("-"):
            import difflib

            hint = difflib.get_close_matches(name, COMMANDS, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise click.UsageError(
                f"unknown command '{name}'{suggestion}; commands: {', '.join(COMMANDS)}"
            )
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="\b\nExample: shapecalc show alexnet")
@click.version_option(package_name="shapecalc", prog_name="shapecalc")
def cli() -> None:
    """Shapes, parameters and costs of every tensor in a convolutional network.

    MODEL is a zoo name, a spec file (.json/.yaml/.toml) or a Python target (file.py:Net,
    package.module:make_net(num_classes=10)). A Python target runs that Python code, as
    `python file.py` would, and calls what it names; the check that it names a model guards
    against mistakes and is not a sandbox. Zoo names, spec files (any MODEL ending in
    .json/.yaml/.yml/.toml) and checkpoints never run code.

    Exit status: 0 done (check: fits), 1 does not fit, 2 usage error or the model could not be
    loaded, 130 interrupted; a closed stdout ends quietly with the command's answer.
    """


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"shapecalc: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the group and turn every error into one line (statuses above)."""
    args = sys.argv[1:] if argv is None else list(argv)
    set_answer(0)
    _fill_closed_fds()
    streams = sys.stdout, sys.stderr
    # Everything printed passes one filter: names from files cannot drive the terminal.
    sys.stdout = PrintableStream(sys.stdout or ClosedStream("<stdout>"))
    sys.stderr = PrintableStream(sys.stderr or ClosedStream("<stderr>"))
    try:
        with _third_party_warnings_captured():
            code = _run(args)
        sys.stdout.flush()
    except (ClosedPipe, BrokenPipeError):
        sys.stdout, sys.stderr = streams
        _closed_pipe()
    except StreamFailed as err:  # stdout full or closed: one line, exit 1, nothing left to flush
        sys.stdout, sys.stderr = streams
        _stdout_failed(err)
    finally:
        sys.stdout, sys.stderr = streams
    sys.exit(code)


@contextmanager
def _third_party_warnings_captured() -> Iterator[None]:
    """Warnings torch, matplotlib or a user's module raise while the command runs are dropped
    (not recorded: a warning in a loop must not grow memory), so stderr holds shapecalc's own
    line and nothing else; ``python -W …`` or ``PYTHONWARNINGS`` shows them again."""
    if sys.warnoptions:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _fill_closed_fds() -> None:
    """Point a closed standard descriptor (``>&-``) at /dev/null, so that no file shapecalc opens
    later gets descriptor 1 or 2 and receives output or a child's stderr by accident."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            except OSError:
                pass


def _stdout_failed(err: StreamFailed) -> NoReturn:
    """One line on stderr (when stderr itself works), exit 1; stdout is pointed at /dev/null so
    the interpreter's final flush of what it still holds cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stderr.write(f"shapecalc: error: {printable(str(err))}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(1)


def _run(args: list[str]) -> int:
    if not args:  # bare `shapecalc`: the help, as git does
        click.echo(cli.get_help(click.Context(cli, info_name="shapecalc")))
        return 0
    try:
        rv = cli.main(args=args, prog_name="shapecalc", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as err:
        fail(_one_line(err.format_message()), err.exit_code)
    except ArgumentError as err:
        base, _, index = err.param.partition("[")  # input_shape[2] → --input (its 3rd size)
        flag = FLAGS.get(base, base) + (f" (size {int(index[:-1]) + 1})" if index[:-1].isdigit() else "")
        fail(_one_line(f"{flag}: {err.detail}"), 2)
    except OutputError as err:  # a bad target is usage (2); a full disk while writing is not (1)
        fail(_one_line(str(err)), 1 if err.while_writing else 2)
    except (UsageError, SpecError) as err:
        fail(_one_line(str(err)), 2)
    except LayerError as err:
        fail(_one_line(str(err)), 1)
    except ShapecalcError as err:
        fail(_one_line(str(err)), 1)
    except RecursionError:  # a last resort: where the model is read, it is a SpecError already
        fail(f"the model is nested deeper than Python's recursion limit "
             f"({sys.getrecursionlimit():,} calls); shapecalc cannot read it", 1)
    except MemoryError:
        fail("out of memory", 1)
    except SystemExit:
        # click answers a closed pipe during its own output (``--help | head -1``) with exit 1
        # after swapping stdout for a wrapper that ignores flush errors (``PacifyFlushWrapper``,
        # ``_PacifyFlushWrapper`` in click 8.5): report it as one.
        if type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
            raise ClosedPipe() from None
        raise
    return rv if isinstance(rv, int) else 0


def _closed_pipe() -> NoReturn:
    """Stop quietly: point stdout at /dev/null so the interpreter's final flush cannot fail
    (which would print "Exception ignored ... BrokenPipeError"), and exit with the answer."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(_answer)


def _one_line(text: str) -> str:
    return " ".join(text.split())
