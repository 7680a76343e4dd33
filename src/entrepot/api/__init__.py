"""The HTTP API (FastAPI) and the client the CLI uses when logged in to a server."""

from entrepot.api.app import create_app

__all__ = ["create_app"]
