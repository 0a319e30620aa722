"""Development tools beside the source, not in the installed package: the synthetic province
and misconduct generators (``relief seed``, ``relief scenario``, the tests and the bench use
them) and measurements."""
