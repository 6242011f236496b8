"""The exception types the command line turns into a one-sentence error, and their exit codes."""


class UserFacingError(Exception):
    """An error whose message tells the operator what went wrong and what to do next."""

    exit_code = 2


class PermissionProblem(UserFacingError):
    """The connected role lacks a privilege: the message names the role, each object and the
    privilege it lacks, and what to do.  Its own exit code, 4, tells it apart from a data
    failure (validate's 1) and from any other error (2)."""

    exit_code = 4
