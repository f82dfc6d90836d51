"""A Google service-account key for GA4 sources."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class Ga4ServiceAccount(Block):
    """A service account's JSON key with Viewer access to a GA4 property; specs refer to it as
    `credentials: {block: <name>}` in a `kind: ga4` source."""

    _block_type_name = "Headwater GA4 Service Account"
    _block_type_slug = "headwater-ga4-service-account"
    _description = "A Google service-account JSON key that Headwater's GA4 sources read reports with."

    key_json: SecretStr = Field(
        ..., description="The whole JSON key file as Google created it (type service_account)."
    )
