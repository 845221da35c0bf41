"""Reading and writing conversations: streaming loaders with quarantine, and atomic writers.

See :mod:`copilot.io.readers` for the input formats and the counting rules, and
:mod:`copilot.io.writers` for the output formats.
"""

from __future__ import annotations

from copilot.io.readers import (
    DEFAULT_ROLE_ALIASES,
    FORMATS,
    RAW_LIMIT,
    ROW_COLUMNS,
    ConversationReader,
    LoadSummary,
    Quarantined,
    iter_conversations,
    open_conversations,
)
from copilot.io.writers import (
    OUTPUT_FORMATS,
    RecordWriter,
    conversation_rows,
    open_record_writer,
    write_conversations,
    write_quarantine,
)

__all__ = [
    "DEFAULT_ROLE_ALIASES",
    "FORMATS",
    "OUTPUT_FORMATS",
    "RAW_LIMIT",
    "ROW_COLUMNS",
    "ConversationReader",
    "LoadSummary",
    "Quarantined",
    "RecordWriter",
    "conversation_rows",
    "iter_conversations",
    "open_conversations",
    "open_record_writer",
    "write_conversations",
    "write_quarantine",
]
