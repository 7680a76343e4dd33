"""A provider's vault: immutable dataset versions in Parquet, quarantine, local execution.

The exchange reaches a provider's data only through the :class:`Vault` protocol;
:class:`LocalVault` keeps it in the node's own home.
"""

from entrepot.vault.local import AttachedView, LocalVault
from entrepot.vault.protocol import (
    Aggregate,
    Aggregated,
    OnError,
    Operation,
    OperationKind,
    Outcome,
    Progress,
    Published,
    PublishRequest,
    Touched,
    Vault,
    VersionInfo,
)
from entrepot.vault.providers import ProviderInfo, add_provider, list_providers
from entrepot.vault.refs import DatasetRef, dataset_slug_from_title, slugify

__all__ = [
    "Aggregate",
    "Aggregated",
    "AttachedView",
    "DatasetRef",
    "LocalVault",
    "OnError",
    "Operation",
    "OperationKind",
    "Outcome",
    "Progress",
    "ProviderInfo",
    "PublishRequest",
    "Published",
    "Touched",
    "Vault",
    "VersionInfo",
    "add_provider",
    "dataset_slug_from_title",
    "list_providers",
    "slugify",
]
