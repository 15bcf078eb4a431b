"""Errors the command line and the server turn into clear messages."""


class BatonError(Exception):
    """An expected failure with a message meant for the user (bad input, missing file, missing weights).

    The command line prints ``error: <message>`` and exits 1; the server maps it to a structured error body.
    """


class NotAvailableError(BatonError):
    """A command or model that is not built (or not installed) yet; the command line exits 2."""
