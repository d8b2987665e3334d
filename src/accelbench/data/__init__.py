"""Corpora, tokenization and padding, models and checkpoints."""
