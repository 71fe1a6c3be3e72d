"""The Assistants engine: operations (``core``), run executor (``runs``), events, HTTP app."""
