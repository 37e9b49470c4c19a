"""Cove: private, offline chat with open-weight language models."""

__version__ = "0.1.0"
