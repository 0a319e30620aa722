"""The relief domain: aggregates, events and policy rules. Pure Python, no I/O.

The only library imported here is ``eventsourcing.domain``, itself free of I/O: it supplies the
aggregate base class whose command methods record immutable events.
"""
