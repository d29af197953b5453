"""The ``ganaug`` command line: thin click commands over the library.

Exit codes: 0 ok, 1 runtime failure (a :class:`~ganaug.errors.GanaugError`, printed as one line),
2 bad usage. Each subcommand lives in its own module in this package and is registered below.
"""

from __future__ import annotations

import sys

import click

from ganaug import __version__
from ganaug.cli.common import GanaugGroup

# name -> "module:attribute"; imported lazily so `ganaug --help` stays fast.
COMMANDS: dict[str, str] = {
    "version": "ganaug.cli.version_cmd:version",
    "data": "ganaug.cli.data_cmd:data",
    "train": "ganaug.cli.train_cmd:train",
    "sample": "ganaug.cli.sample_cmd:sample",
    "export": "ganaug.cli.export_cmd:export",
    "augment": "ganaug.cli.augment_cmd:augment",
    "plugins": "ganaug.cli.plugins_cmd:plugins",
    "eval": "ganaug.cli.eval_cmd:eval_group",
    "demo": "ganaug.cli.demo_cmd:demo",
}


@click.group(
    cls=GanaugGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, "-V", "--version", prog_name="ganaug")
def cli() -> None:
    """ganaug: train conditional GANs on your labelled images, export them to ONNX,
    and mix synthetic samples into your dataset.

    \b
    Example:
      ganaug data example fm-train      # the built-in Fashion-MNIST subset as class folders
      ganaug data inspect fm-train
      ganaug train fm-train --out runs/exp --steps 3000
      ganaug export runs/exp --out generator.onnx
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="ganaug", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
