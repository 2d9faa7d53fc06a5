"""The timeline service: resolves identities and keeps one history per customer."""
