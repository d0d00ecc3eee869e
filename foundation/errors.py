"""gridhub's error taxonomy: every failure says, by its type, whether to retry, reject or stop.

Whoever catches an error decides what to do from its branch alone, never from its message
or from where it was raised:

- :class:`RetryableError`: the world may heal (the broker is unreachable, a call timed out,
  a server answered 5xx or 429). The operation is tried again with growing back-off; what it
  was carrying is kept (a watched file stays claimed, a cursor does not move).
- :class:`InputRejected`: this record, file or request is wrong and will be wrong every time.
  It is never retried; it is kept or refused with its ``reason_code`` and a sentence a person
  can act on.
- :class:`ConfigurationError`: the hub was set up wrongly (a mapping file, a missing variable,
  a refused credential). The process stops with one line saying what to fix.

Every class is a :class:`GridhubError`, so the command line catches the root and prints the
message instead of a traceback; anything else reaching it is a bug.
"""

from __future__ import annotations


class GridhubError(Exception):
    """The root of gridhub's errors; ``str(error)`` is a sentence for the person who must act."""


class RetryableError(GridhubError):
    """A failure of the world around the hub that may heal: retry the same work later, with back-off."""


class InputRejected(GridhubError):
    """Input that is wrong and stays wrong: never retried, kept or refused with a reason code."""

    reason_code: str = "rejected_input"
    """A stable, machine-readable name of the problem (a class may set its own default)."""

    def __init__(self, reason: str, reason_code: str | None = None) -> None:
        super().__init__(reason)
        if reason_code is not None:
            self.reason_code = reason_code


class ConfigurationError(GridhubError):
    """The hub's own set-up is wrong: stop, and say in one line what to fix."""


class BrokerUnavailable(RetryableError):
    """Kafka did not answer or did not acknowledge in time: nothing was lost, send the same again later."""
