"""Structured logging, quiet by default (warnings and up) for every process."""

from __future__ import annotations

import logging
import sys

import structlog

from foundation.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Route stdlib and structlog records through one renderer on stderr."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer], foreign_pre_chain=shared
        )
    )
    handler.setLevel(settings.log_level)  # libraries that raise their own loggers' levels stay quiet too
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in _RECONNECTING_LOGGERS:
        logging.getLogger(name).setLevel("DEBUG" if settings.log_level == "DEBUG" else "CRITICAL")


_RECONNECTING_LOGGERS = ("kafka.net", "kafka.conn", "kafka.client_async", "kafka.cluster")
"""kafka-python logs an ERROR on every reconnect attempt while a broker is away (dozens a minute);
gridhub's own code says it once, with what to do, when the broker stays away past its timeout."""


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; call :func:`configure_logging` once per process first."""
    return structlog.stdlib.get_logger(name)
