"""Fault injection: `python -m chaos` kills and restarts the local stack under load, then checks."""
