"""Metrics, experiments and figures."""
