"""HTTP API, authentication and the command-line interface."""
