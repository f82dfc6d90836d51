"""Credentials for a REST API source."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class RestCredentials(Block):
    """A token for a REST source's auth header; specs refer to it as `auth: {block: <name>}`."""

    _block_type_name = "Headwater REST Credentials"
    _block_type_slug = "headwater-rest-credentials"
    _description = "A bearer token or API key for a REST API that a Headwater pipeline extracts from."

    token: SecretStr = Field(..., description="The token or API key sent in the auth header.")
