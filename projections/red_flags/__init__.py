"""Red flags (疑点提示) for supervision: a rule engine over the event log that points at what
looks wrong in contractors' and staff's work, says why, and cites the events as evidence.
A flag is a lead for a person to review, never an automatic sanction."""
