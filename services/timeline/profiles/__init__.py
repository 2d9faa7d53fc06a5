"""Customer profiles: what the log says about each customer, kept up to date per batch."""
