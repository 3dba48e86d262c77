"""``shapecalc`` command line: a click group whose commands live one to a module.

Commands are imported only when invoked, so ``shapecalc layer`` never pays for the import of
``shapecalc train`` (or torch). Every failure ends as ONE line on stderr and a non-zero exit:
2 for a malformed command line, 1 when the model or layer itself does not fit.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import click

from ..errors import ShapecalcError, UsageError

#: command name → "module:attribute" (relative to this package).
COMMANDS = {
    "layer": "layer:layer",
    "show": "show:show",
    "models": "show:models",
    "graph": "graph:graph",
    "report": "report:report",
    "check": "check:check",
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shapecalc", prog_name="shapecalc")
def cli() -> None:
    """Shapes, parameters and costs of every tensor in a convolutional network."""


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"shapecalc: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the group and turn every error into one line."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:  # bare `shapecalc`: the help, as git does
        click.echo(cli.get_help(click.Context(cli, info_name="shapecalc")))
        sys.exit(0)
    try:
        rv = cli.main(args=args, prog_name="shapecalc", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as err:
        fail(_one_line(err.format_message()), err.exit_code)
    except UsageError as err:
        fail(_one_line(str(err)), 2)
    except ShapecalcError as err:
        fail(_one_line(str(err)), 1)
    except BrokenPipeError:  # `shapecalc show ... | head`
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())
