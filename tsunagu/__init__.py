"""Tsunagu: shared libraries of the omnichannel customer timeline (contracts, bus, identifiers)."""
