"""Insights: read models for supervisors built from the timeline's outcomes."""
