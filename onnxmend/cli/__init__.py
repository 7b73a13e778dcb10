"""The ``onnxmend`` command line. It parses, orchestrates and renders; it computes nothing itself.

Bad input is one sentence on stderr and exit code 2; a parity mismatch is exit code 1.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from onnxmend import __version__
from onnxmend.cli.render import err_console
from onnxmend.core.errors import OnnxmendError

# Commands that live in their own module under onnxmend/commands/, imported only when used.
LAZY_COMMANDS = {
    "quantize": "onnxmend.cli.commands.quantize",
    "bench": "onnxmend.cli.commands.bench",
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
@click.option("-v", "--verbose", is_flag=True, help="Log what passes skip and why.")
def cli(verbose: bool) -> None:
    """Export models to ONNX, fix what frameworks disagree on, and prove parity with the source."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("tensorflow", "tf2onnx", "absl", "h5py", "matplotlib", "onnxscript", "torch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except OnnxmendError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


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
