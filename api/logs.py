"""Logs never carry resident ID numbers: a filter masks them in every record we emit.

The domain already masks numbers in its messages; this catches what it cannot see (a number
inside a URL of an access log, a library's error message quoting a value).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from domain.identifiers import mask_resident_id

#: 18 characters of a resident ID number (GB 11643), not part of a longer run of digits.
RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def mask_ids(text: str) -> str:
    return RESIDENT_ID.sub(lambda m: mask_resident_id(m.group(0)), text)


class MaskResidentIds(logging.Filter):
    """Masks ID numbers in a record's message template, its arguments and its traceback.

    The arguments stay arguments, of the same shape: formatters that take them apart (uvicorn's
    access log reads client, method, path, version and status from them) keep working, and a
    failed formatting has nothing in clear left to report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _masked(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {name: _masked(value) for name, value in record.args.items()}
        elif record.args:
            record.args = tuple(_masked(value) for value in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks quote exception messages; format them now, masked.
            record.exc_text = mask_ids(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_ids(record.stack_info)
        try:
            message = record.getMessage()
        except Exception:  # the record's own formatting fault: logging reports it (masked)
            return True
        if RESIDENT_ID.search(message):  # a number split across arguments: mask it whole
            record.msg, record.args = mask_ids(message), ()
        return True


def _masked(value: object) -> object:
    """``value`` itself when it shows no ID number, else its text masked."""
    if isinstance(value, str):
        return mask_ids(value)
    if value is None or isinstance(value, (bool, float)):
        return value
    text = str(value)
    masked = mask_ids(text)
    return value if masked == text else masked


def install(*logger_names: str) -> None:
    """Attach the filter to the handlers of the root logger and of the named loggers."""
    flt = MaskResidentIds()
    for name in ("", *logger_names):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not any(isinstance(f, MaskResidentIds) for f in handler.filters):
                handler.addFilter(flt)
