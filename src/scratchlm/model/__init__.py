"""The decoder-only TransformerLM, its config, KV cache and sampling."""
