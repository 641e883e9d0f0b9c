"""`signals`: the command line of session-signals.

Subcommands are modules under `cli.commands`; this file only wires them together.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from cli.log_setup import configure_logging
from events.errors import UserFacingError

SUBCOMMANDS = ("simulate", "load", "train", "tune", "serve", "score", "trends", "experiment", "uplift")

DESCRIPTION = """\
Turn a shop's event stream into purchase-intent, churn and next-product signals.

typical flow:
  signals simulate --events 200000 --out data/generated/sim     # or: signals load --format rees46 FILE --out DIR
  signals train data.path=data/generated/sim                    # trains, evaluates beside baselines, registers in MLflow
  signals serve                                                 # BentoML endpoint on session-signals@champion
  signals score data/generated/sim --out data/audiences/today   # every customer into audience files (batch)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signals", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages, and the libraries' INFO lines and warnings (quiet by default)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"cli.commands.{name}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args._module.run(args) or 0)
    except UserFacingError as err:
        print(f"signals {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
