"""A provider's vault: immutable dataset versions in Parquet, quarantine, local execution.

The exchange reaches a provider's data only through the :class:`Vault` protocol;
:class:`LocalVault` keeps it in the node's own home.
"""

from entrepot.vault.local import LocalVault
from entrepot.vault.protocol import (
    AttachedView,
    OnError,
    Progress,
    Published,
    PublishRequest,
    Vault,
    VersionInfo,
)
from entrepot.vault.providers import ProviderInfo, add_provider, list_providers
from entrepot.vault.refs import DatasetRef, dataset_slug_from_title, slugify

__all__ = [
    "AttachedView",
    "DatasetRef",
    "LocalVault",
    "OnError",
    "Progress",
    "ProviderInfo",
    "PublishRequest",
    "Published",
    "Vault",
    "VersionInfo",
    "add_provider",
    "dataset_slug_from_title",
    "list_providers",
    "slugify",
]
