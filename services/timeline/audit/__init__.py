"""The read audit: who accessed whose personal data, on a hash chain per tenant."""
