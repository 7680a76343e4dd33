"""entrepot: a federated, privacy-preserving data exchange. Trade the insight, not the data."""

from entrepot.errors import EntrepotError
from entrepot.settings import Settings

__version__ = "0.1.0"

__all__ = ["EntrepotError", "Settings", "__version__"]
