"""Logs never carry resident ID numbers: a filter masks them in every record we emit.

The domain already masks numbers in its messages; this catches what it cannot see (a number
inside a URL of an access log, a library's error message quoting a value).
"""

from __future__ import annotations

import logging
import re

from domain.identifiers import mask_resident_id

#: 18 characters of a resident ID number (GB 11643), not part of a longer run of digits.
RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def mask_ids(text: str) -> str:
    return RESIDENT_ID.sub(lambda m: mask_resident_id(m.group(0)), text)


class MaskResidentIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_ids(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks quote exception messages; format them now, masked.
            record.exc_text = mask_ids(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install(*logger_names: str) -> None:
    """Attach the filter to the handlers of the root logger and of the named loggers."""
    flt = MaskResidentIds()
    for name in ("", *logger_names):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not any(isinstance(f, MaskResidentIds) for f in handler.filters):
                handler.addFilter(flt)
