"""Tsunagu's back-end services: per-channel ingestion and the timeline."""
