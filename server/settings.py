"""Server settings: one object, read from ``COPILOT_*`` environment variables.

=========================  ==============================  ===========================================
variable                   default                         meaning
=========================  ==============================  ===========================================
``COPILOT_BUNDLE_DIR``     ``bundles/default``              model bundle loaded at start-up
``COPILOT_RUBRIC``         (the default rubric)            rubric YAML for scoring
``COPILOT_DATA_DIR``       ``data``                        where the default SQLite database lives
``COPILOT_DATABASE_URL``   ``sqlite:///<data_dir>/         SQLAlchemy URL (SQLite or PostgreSQL)
                           copilot.db``
``COPILOT_HOST``           ``127.0.0.1``                   address ``copilot serve`` binds
``COPILOT_PORT``           ``8000``                        port ``copilot serve`` binds
``COPILOT_MAX_BODY_BYTES`` ``2000000``                     largest request body (413 above)
``COPILOT_MAX_HEADER_BYTES`` ``16384``                     largest request line and headers
                                                           together (431 above; see
                                                           :mod:`server.protocol`)
``COPILOT_MAX_MESSAGES``   ``2000``                        most messages per conversation
``COPILOT_MAX_CONVERSATIONS`` ``500``                      most conversations per POST
``COPILOT_LOG_LEVEL``      ``INFO``                        log level of the JSON logs
``COPILOT_SUGGEST_K``      ``3``                           suggestions when a request gives no ``k``
``COPILOT_WORKER_THREADS`` ``4``                           threads running requests, per process
``COPILOT_WORKERS``        ``1``                           server processes ``copilot serve`` runs
``COPILOT_AUTH_CACHE_SECONDS`` ``10``                      how long a checked API key is trusted
                                                           without asking the database again (a
                                                           revoked key works at most this long; 0:
                                                           every request asks)
``COPILOT_SYNC_SECONDS``   ``2``                           how often each process picks up pins,
                                                           bans, feedback and reloads made by the
                                                           others (0: never)
``COPILOT_SERVED_WRITE_SECONDS`` ``0.2``                   served suggestions are written in
                                                           batches this often (0: each request)
``COPILOT_ATTRIBUTION_HOURS`` ``72``                       an order goes to its customer's latest
                                                           conversation with a message at most
                                                           this long before the payment
``COPILOT_FOLLOWUP_RULES``  (the built-in rules)            follow-up rules YAML for ``/v1/followups``
                                                           (a copy of ``copilot/data/followups.yaml``)
=========================  ==============================  ===========================================

Library code never reads these: the app factory takes a :class:`Settings`, and routes get it
through the ``SettingsDep`` dependency, which reads the settings the app was built with.

The optional LLM's ``COPILOT_LLM_*`` variables (backend, model, ``COPILOT_LLM_DRAFT_BUDGET_S``
...) are :class:`copilot.llm.LLMSettings`, a second object the app factory takes (``llm=``), not
fields of this one: ``copilot serve --workers`` hands every field here down as an environment
variable, which a nested object (and its secret key) would not survive.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LogLevel", "Settings", "get_settings"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """Everything the server can be configured with (see the module docstring for the table).

    Example:
        >>> Settings(bundle_dir="bundles/default", database_url="sqlite:///tmp/copilot.db")
    """

    model_config = SettingsConfigDict(env_prefix="COPILOT_", extra="ignore", frozen=True)

    bundle_dir: Path = Path("bundles/default")
    rubric: Path | None = None
    data_dir: Path = Path("data")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means sqlite:///<data_dir>/copilot.db"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=2_000_000, ge=1_024)
    max_header_bytes: int = Field(default=16_384, ge=1_024, le=1_048_576)
    max_messages: int = Field(default=2_000, ge=1)
    max_conversations: int = Field(default=500, ge=1)
    log_level: LogLevel = "INFO"
    suggest_k: int = Field(default=3, ge=1, le=20)
    worker_threads: int = Field(default=4, ge=1, le=256)
    workers: int = Field(default=1, ge=1, le=64)
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    sync_seconds: float = Field(default=2.0, ge=0, le=3600)
    served_write_seconds: float = Field(default=0.2, ge=0, le=60)
    attribution_hours: float = Field(default=72.0, gt=0, le=24 * 366)
    followup_rules: Path | None = None
    serve_id: str | None = Field(
        default=None,
        description="set by `copilot serve` for its worker processes: one id per server run",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            # frozen: set through object.__setattr__ once, while validating
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'copilot.db'}")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once from the environment (a FastAPI dependency)."""
    return Settings()
