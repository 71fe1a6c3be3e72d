"""Model backends: one small interface (``base``), a registry by name prefix (``registry``),
scripted models for tests and teaching (``scripted``), Chat Completions (``openai_chat``)."""
