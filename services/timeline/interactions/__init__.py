"""The interaction log: stored interactions, their documents and timeline entries."""
