"""The migrations build exactly the schema the models describe, on this database."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from advocado.store.db import current_revision, head_revision
from advocado.store.models import Base


def test_migrated_database_matches_the_models(engine) -> None:
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
