"""Embeddings service: global image embeddings from a timm backbone."""
