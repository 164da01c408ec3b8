"""ATLANTIS: weak-to-strong, importance-weighted fine-tuning for relation extraction under noisy labels."""

__version__ = "0.1.0"
