"""The one exception type the command line turns into a one-sentence error."""


class UserFacingError(Exception):
    """An error whose message tells the operator what went wrong and what to do next."""
