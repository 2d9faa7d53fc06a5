"""The insights service: service metrics, customers at risk and the voice of the customer."""
