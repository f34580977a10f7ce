"""Benchmarks: commands that report numbers; each compares against its baseline measured in the same run."""
