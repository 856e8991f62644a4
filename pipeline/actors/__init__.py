"""Every task the engine knows, by domain. Importing this package declares them."""

from pipeline.actors import ai, knowledge, maintenance, notifications  # noqa: F401
