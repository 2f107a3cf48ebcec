"""Versioned schema migrations of the longitudinal store: plain SQL files.

``migrations/<backend>/NNNN_<name>.sql`` — applied in version order at
start-up, each exactly once. SQLite records the version in ``PRAGMA
user_version``; PostgreSQL in the table ``schema_migrations``, under an
advisory lock so replicas starting together apply each migration once.
A migration is never edited after release; a change is a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of ``backend`` ("sqlite" or "postgresql"), oldest first."""
    migrations = []
    for path in sorted((directory / backend).glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration {path.name}: name must be NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations of {backend}: versions must run 1, 2, 3... without gaps")
    return migrations
