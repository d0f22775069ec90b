"""Agents, matches between them, Elo, the solver strength benchmark and speed benchmarks."""
