"""The one exception type that means "the user asked for something that cannot be done"."""


class UserError(Exception):
    """Bad input: the CLI prints the message on one line and exits with code 2."""
