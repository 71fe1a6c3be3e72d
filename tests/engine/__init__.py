"""Engine tests through the official openai SDK (in-process and over HTTP)."""
