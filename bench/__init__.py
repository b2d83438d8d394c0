"""Benchmarks of postventa: send throughput and latency, delivery, attachment memory, scale.

Each benchmark is one command run from the project root with the project's virtualenv, e.g.
`.venv/bin/python -m bench.send`; `--quick` makes it a few seconds long. Results are printed as a
table and appended to docs/results/bench-<name>.json. docs/performance.md explains them.
"""
