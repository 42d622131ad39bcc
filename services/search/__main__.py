"""``python -m services.search``: run the search service."""

from services.common.service import serve
from services.search.app import create_app
from services.search.settings import SearchSettings

if __name__ == "__main__":
    serve("search", SearchSettings(), create_app)
