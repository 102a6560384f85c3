"""flightsync benchmarks: speed against the ideal, through the project's own code paths.

``python -m benchmarks [--json] [--quick] [--runs N] [--latency-ms 100]`` from the repo root
(see benchmarks/README.md). ``benchmarks.fusion`` is the separate fusion-accuracy benchmark.
The test suite never asserts timings; these figures live in benchmarks/RESULTS.md.
"""
