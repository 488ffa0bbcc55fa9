"""Use cases: what agents, supervisors and admins can do, each written in one unit of work.

Entry points (the HTTP API, the CLI) call these and nothing deeper; errors are
``ServiceError`` subclasses whose message tells the person what to do.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out; the message says why and what to do instead."""


class NotFound(ServiceError):
    """The thing asked for does not exist, or is not this user's to see."""


class Refused(ServiceError):
    """The request conflicts with the current state (a call still up, a disposition already written)."""


class Invalid(ServiceError):
    """The request itself is wrong (an unknown code, a date in the past)."""


class Unauthorized(ServiceError):
    """Unknown user, wrong password, or a token that is unknown or expired."""
