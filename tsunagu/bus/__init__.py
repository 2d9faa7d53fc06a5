"""The event bus: NATS JetStream streams, subjects and the interaction publisher."""
