"""Pretraining: the loop (`pretrain`), checkpoints, data parallelism and metrics."""
