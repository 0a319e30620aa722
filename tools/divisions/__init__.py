"""Tools that make the shipped division register file."""
