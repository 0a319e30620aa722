"""Synthetic data: a realistic province written through the ledger's own commands."""
