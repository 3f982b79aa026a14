"""Token files, batches for training, and the synthetic story corpus."""
