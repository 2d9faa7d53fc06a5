"""Channel ingestion: one codebase, deployed once per channel (chat, voice, email, ...)."""
