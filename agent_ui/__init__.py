"""The agent console: login page, the console itself and its static files (see agent_ui/views.py)."""
from .views import routes, setup

__all__ = ["routes", "setup"]
