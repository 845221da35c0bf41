"""The server's storage: SQLAlchemy 2 models, engines and sessions, Alembic migrations, and the
repository functions the routes call.

The database is a URL (``COPILOT_DATABASE_URL``): a SQLite file by default (WAL mode), or
PostgreSQL (``postgresql+psycopg://user:password@host:5432/dbname``).

Example:
    >>> from server.db import make_engine, make_session_factory, migrate, list_conversations
    >>> engine = make_engine("sqlite:///data/copilot.db")
    >>> migrate(engine)
    >>> with make_session_factory(engine)() as session:
    ...     total, items = list_conversations(session, principal, sort="-overall")
"""

from __future__ import annotations

from server.db.models import Base
from server.db.repository import (
    OUTCOMES,
    SCRIPT_STATES,
    SORTS,
    FeedbackOutcome,
    ScriptStateName,
    Sort,
    UpsertStatus,
    acceptance_by_guide,
    acceptance_by_script,
    authenticate,
    bundle_state,
    check_key_scope,
    create_api_key,
    feedback_version,
    get_conversation,
    insert_served,
    iter_reports,
    judgements_by_script,
    list_api_keys,
    list_conversations,
    record_feedback,
    record_suggestions,
    revoke_api_key,
    script_states,
    served_rows,
    set_bundle_state,
    set_script_state,
    store_script_states,
    upsert_conversations,
)
from server.db.session import (
    MIGRATIONS_DIR,
    begin_write,
    describe_url,
    make_engine,
    make_session_factory,
    migrate,
)

__all__ = [
    "MIGRATIONS_DIR",
    "OUTCOMES",
    "SCRIPT_STATES",
    "SORTS",
    "Base",
    "FeedbackOutcome",
    "ScriptStateName",
    "Sort",
    "UpsertStatus",
    "acceptance_by_guide",
    "acceptance_by_script",
    "authenticate",
    "begin_write",
    "bundle_state",
    "check_key_scope",
    "create_api_key",
    "describe_url",
    "feedback_version",
    "get_conversation",
    "insert_served",
    "iter_reports",
    "judgements_by_script",
    "list_api_keys",
    "list_conversations",
    "make_engine",
    "make_session_factory",
    "migrate",
    "record_feedback",
    "record_suggestions",
    "revoke_api_key",
    "script_states",
    "served_rows",
    "set_bundle_state",
    "set_script_state",
    "store_script_states",
    "upsert_conversations",
]
