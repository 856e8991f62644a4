"""Every task the engine knows, by domain. Importing this package declares them."""
