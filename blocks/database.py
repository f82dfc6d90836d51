"""A warehouse or source database, built on prefect-sqlalchemy's SqlAlchemyConnector."""

from __future__ import annotations

from prefect_sqlalchemy import SqlAlchemyConnector


class HeadwaterDatabase(SqlAlchemyConnector):
    """A database Headwater reads from or loads into. `connection_info` is a SQLAlchemy URL or its
    components (the password is a SecretStr); specs refer to it as `connection: {block: <name>}` or
    `warehouse: {block: <name>}`. Use a synchronous driver: postgresql+psycopg2 or sqlite."""

    _block_type_name = "Headwater Database"
    _block_type_slug = "headwater-database"
    _description = "A SQL database (PostgreSQL or SQLite) that Headwater pipelines read from or load into."

    def sqlalchemy_url(self) -> str:
        """The full URL, password included: hand it to the domain, never log it."""
        return self._rendered_url.render_as_string(hide_password=False)
