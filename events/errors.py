"""Errors that the CLI prints as one clear line (no traceback): bad files, columns, config keys."""


class UserFacingError(Exception):
    """An error caused by the user's input; the message names the file, row, column or key."""
