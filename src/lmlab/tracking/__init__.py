"""Experiment tracking: the configured loggers (W&B, CSV, TensorBoard), W&B's online/offline choice."""
