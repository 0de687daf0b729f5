"""Benchmarks that answer questions with measurements: ``bench logging`` (the lesson's homework)."""
