"""The model server: an OpenAI-compatible HTTP API over transformers' continuous batching.

Importing this package is cheap; torch and transformers load only when a server starts
(`deepseek_operator.serving.server.run`) or a model is loaded.
"""
