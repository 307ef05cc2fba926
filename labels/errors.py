"""The base of every error a user can fix: the CLI prints these as one line."""


class UserError(ValueError):
    """A mistake in input, data, recipe or model choice; the message says what to do."""
