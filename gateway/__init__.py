"""Tsunagu gateway: the agents' GraphQL API, reading the timeline through its gRPC API."""
