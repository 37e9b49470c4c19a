"""Remote engines: OpenAI-compatible servers the person added (vLLM, llama-server, Ollama, another Cove)."""
