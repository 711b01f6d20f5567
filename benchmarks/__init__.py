"""Benchmarks: speed and memory against a baseline measured in the same run (see README.md).

`python -m benchmarks.run` prints the one table; the `bench_*.py` scripts go deeper, one subject each."""
