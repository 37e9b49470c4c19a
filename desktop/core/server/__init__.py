"""Cove's own OpenAI-compatible API server over the same engine (``cove serve`` and Settings -> Server)."""
