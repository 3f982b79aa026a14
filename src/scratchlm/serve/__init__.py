"""Talking to a checkpoint: the terminal chat REPL and the OpenAI-compatible HTTP server."""
