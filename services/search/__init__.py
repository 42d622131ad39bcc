"""The search service: a FAISS index of artwork embeddings keyed by object id, with catalogue metadata."""
