"""One error type whose message is safe to show a user as it is."""


class SubtoneError(Exception):
    """A problem the user can fix; the message names the thing and what was expected."""
