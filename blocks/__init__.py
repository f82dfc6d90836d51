"""Prefect blocks: typed connection and credential configuration, secrets as SecretStr. No logic.

Register them with `prefect block register -m blocks`."""

from blocks.database import HeadwaterDatabase
from blocks.ga4 import Ga4ServiceAccount
from blocks.rest import RestCredentials

__all__ = ["Ga4ServiceAccount", "HeadwaterDatabase", "RestCredentials"]
