"""One module per `signals` subcommand.

Each module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. Module tops import
only the standard library so that `signals --help` stays fast; heavy imports live inside `run`.
"""
