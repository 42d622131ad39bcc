"""Benchmarks and measuring tools; run each from the repository root (see each module's docstring)."""
