"""``python -m services.embeddings``: run the embeddings service."""

from services.common.service import serve
from services.embeddings.app import create_app
from services.embeddings.settings import EmbeddingsSettings

if __name__ == "__main__":
    serve("embeddings", EmbeddingsSettings(), create_app)
