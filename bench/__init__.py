"""Benchmarks: one script per figure of issue 9, each beside a raw baseline of the same run."""
