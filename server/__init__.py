"""The copilot HTTP server: FastAPI app, storage (``server.db``) and API-key access control.

Run it with ``copilot serve``; create keys with ``copilot keys create``. The HTTP contract is
``docs/api.md`` (generated from this app by ``docs/generate.py``) and the README.
"""
