"""Benchmarks through gunicorn: `make bench` (python -m tests.bench.run)."""
