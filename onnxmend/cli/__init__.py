"""The ``onnxmend`` command line. It parses, calls a flow and renders; it computes nothing itself.

Exit codes (``onnxmend.cli.exits``): 0 pass, 1 mismatch or gate failure, 2 bad input (one sentence on
stderr), 3 rewritten but not verified numerically, 4 internal error (one line and the log path).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click
from rich.markup import escape

from onnxmend import __version__
from onnxmend.cli import exits
from onnxmend.cli.render import err_console
from onnxmend.core.errors import OnnxmendError, first_line

# Commands that live in their own module under onnxmend/commands/, imported only when used.
LAZY_COMMANDS = {
    "quantize": "onnxmend.cli.commands.quantize",
    "bench": "onnxmend.cli.commands.bench",
    "sweep": "onnxmend.cli.commands.sweep",
    "diff": "onnxmend.cli.commands.diff",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            return importlib.import_module(LAZY_COMMANDS[name]).command
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="onnxmend")
def cli() -> None:
    """Export models to ONNX, fix what frameworks disagree on, and prove parity with the source.

    Every command takes -h; those that work take -q (verdict only), -v (more detail) and --json (one JSON
    document on stdout). Exit codes: 0 pass, 1 mismatch or gate failure, 2 bad input, 3 not verified
    numerically, 4 internal error (one line and a log file).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("tensorflow", "tf2onnx", "absl", "h5py", "matplotlib", "onnxscript", "torch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except OnnxmendError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exits.BAD_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # a bug: one line, the traceback in a log file, and its own exit code
        log = exits.write_crash_log(exc, sys.argv)
        err_console.print(f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(first_line(exc))} "
                          f"(details in {log})", highlight=False, soft_wrap=True)
        sys.exit(exits.INTERNAL)
    sys.exit(code if isinstance(code, int) else exits.PASS)


from onnxmend.cli.commands import convert as _convert  # noqa: E402  (registration below needs cli defined)
from onnxmend.cli.commands import fix as _fix  # noqa: E402
from onnxmend.cli.commands import inspect as _inspect  # noqa: E402
from onnxmend.cli.commands import passes as _passes  # noqa: E402
from onnxmend.cli.commands import validate as _validate  # noqa: E402
from onnxmend.cli.commands import zoo as _zoo  # noqa: E402

for _module in (_convert, _fix, _validate, _inspect, _passes, _zoo):
    cli.add_command(_module.command)

if __name__ == "__main__":
    main()
