"""Local stack: run a real nats-server, the embedded store and every service as processes."""
