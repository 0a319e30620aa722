"""Request bodies of the commands, and how each maps to its typed command.

One module per family, as the services: a request model validates the JSON a client sends
(shape and types; unknown fields refused) and its ``command`` method builds the command from
it, the record named in the path, the caller's provenance and If-Match: the one place where
request fields become command fields. The domain then applies its rules to the command.
"""
