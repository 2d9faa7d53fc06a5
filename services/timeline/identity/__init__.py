"""Identity resolution: which customer an interaction's identifiers belong to."""
