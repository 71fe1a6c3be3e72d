"""Model backends: one small interface (``base``), what a backend is given (``settings``), a
table of built-in backends by name prefix with user registrations over it (``registry``),
scripted models for tests and teaching (``scripted``), Chat Completions (``openai_chat``) and
the embedded offline model (``local``)."""
