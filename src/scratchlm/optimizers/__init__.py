"""Optimizers written here: SGD, AdamW and Muon, parameter groups and gradient clipping."""
