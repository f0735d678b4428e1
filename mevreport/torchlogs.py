"""Keeping torch's own log output off the terminal for a block, without muting anyone else's.

``torch.export`` logs whole tracebacks (fake tensor and symbolic shape loggers)
when it refuses a model; the user gets one line from us instead.  The
process-wide ``logging.disable`` would also silence the user's model, their
application and every other thread for the duration (issue 13), so instead
the loggers under ``torch`` that would print (the ``torch`` logger and any
below it with handlers of their own, which torch's logging setup gives some)
are pointed at one recorder, and put back in ``finally``.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class LogRecorder(logging.Handler):
    """Keeps the first line of each logged exception, for the one-line message, instead of printing."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            text = str(record.exc_info[1]).strip()
            self.reasons.append(text.splitlines()[0] if text else type(record.exc_info[1]).__name__)


@contextlib.contextmanager
def torch_logs_recorded(prefix: str = "torch") -> Iterator[LogRecorder]:
    """Route the ``prefix`` logger and those below it that print on their own to a :class:`LogRecorder`."""
    recorder = LogRecorder()
    below = [lg for name, lg in list(logging.root.manager.loggerDict.items())
             if name.startswith(prefix + ".") and isinstance(lg, logging.Logger) and (lg.handlers or not lg.propagate)]
    loggers = [logging.getLogger(prefix), *below]
    saved = [(lg, lg.handlers, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers, lg.propagate = [recorder], False
    try:
        yield recorder
    finally:
        for lg, handlers, propagate in saved:
            lg.handlers, lg.propagate = handlers, propagate


__all__ = ["LogRecorder", "torch_logs_recorded"]
