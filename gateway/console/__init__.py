"""The agent console: a browser UI served by the gateway from files in the project."""
