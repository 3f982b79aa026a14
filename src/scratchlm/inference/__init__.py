"""Text generation from a checkpoint: the engine, and UTF-8-safe streaming with stop strings."""

from scratchlm.inference.engine import Completion, Engine, TextStream

__all__ = ["Completion", "Engine", "TextStream"]
