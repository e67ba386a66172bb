"""Alembic plumbing: each service keeps its own migrations for its own schema.

A service's `migrations/env.py` is two lines calling `run_env`; `upgrade` runs them from code
(`nps-<service> migrate`, the dev stack, the Kubernetes migration Job and the tests), and
`downgrade` and `status` serve `nps-<service> migrate --down-to` and `--status`.
"""

import asyncio
import sys

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(package: str, database_url: str) -> Config:
    config = Config(stdout=sys.stdout)  # the default is the stdout of alembic's import time
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    """Bring `package`'s schema up to `revision`. Synchronous: call it outside an event loop."""
    command.upgrade(alembic_config(package, database_url), revision)


def downgrade(package: str, database_url: str, revision: str) -> None:
    """Take `package`'s schema back to `revision`, as rolling the code back past a release
    whose migration the previous code cannot run on asks (docs/operations.md). Synchronous."""
    command.downgrade(alembic_config(package, database_url), revision)


def status(package: str, database_url: str) -> None:
    """Print the schema's revision (marked `(head)` when it is the newest this release
    knows) and this release's newest. Synchronous."""
    config = alembic_config(package, database_url)
    config.print_stdout("schema at:")
    command.current(config)
    config.print_stdout("this release's newest:")
    command.heads(config)


def run_env(metadata: MetaData) -> None:
    """The body of a service's `env.py`."""
    schema = metadata.schema
    if not schema:
        raise ValueError("each service keeps its tables in its own schema: set MetaData(schema=…)")
    url: str = context.config.attributes["database_url"]

    def configure(connection: Connection | None = None) -> None:
        context.configure(
            connection=connection,
            url=None if connection is not None else url,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
            literal_binds=connection is None,
        )

    if context.is_offline_mode():
        configure()
        with context.begin_transaction():
            context.run_migrations()
        return

    def online(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, hide_parameters=True)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(online)
        finally:
            await engine.dispose()

    asyncio.run(main())
