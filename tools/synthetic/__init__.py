"""Synthetic data: a realistic province written through the application's own commands."""
