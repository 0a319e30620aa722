"""Read models fed by events. A projection is plain code: events in, rows out."""
