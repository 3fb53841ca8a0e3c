"""The error every command turns into one line on stderr and exit status 2 (bad input)."""


class UserError(ValueError):
    """Bad input from the user: one line, exit 2."""
