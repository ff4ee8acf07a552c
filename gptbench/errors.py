"""The one error type a user sees: its message says what is wrong and how to fix it."""


class GptbenchError(Exception):
    """Bad input or an unusable environment; cli.py prints the message in one line and exits 2."""
