"""Evaluation: the offline default task and its graders."""
