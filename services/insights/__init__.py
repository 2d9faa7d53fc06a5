"""The insights service: service metrics and customers at risk, from the timeline's outcomes."""
