"""The base of every error a user can fix: the CLI prints these as one line."""


class UserError(ValueError):
    """A mistake in input, data, recipe or model choice; the message says what to do."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for
    one-line errors built from a library's multi-line ones."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
