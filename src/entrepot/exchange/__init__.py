"""The exchange: the node, its catalog, accounts, contracts, metering and query coordinator."""

from entrepot.exchange.facade import Exchange
from entrepot.exchange.node import Node

__all__ = ["Exchange", "Node"]
