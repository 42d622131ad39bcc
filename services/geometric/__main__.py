"""``python -m services.geometric``: run the geometric service."""

from services.common.service import serve
from services.geometric.app import create_app
from services.geometric.settings import GeometricSettings

if __name__ == "__main__":
    serve("geometric", GeometricSettings(), create_app)
