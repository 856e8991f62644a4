"""Knowledge bases and AI responses.

Documents are chunked, embedded and stored in PostgreSQL + pgvector; questions
are answered from the best passages by a language model or, when none is
configured, by quoting those passages. Submodules stay import-light so the API
process can load the resources without starting a database or a model.
"""
