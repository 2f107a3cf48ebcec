"""Benchmarks: accuracy against baselines, latency and throughput against real servers."""
