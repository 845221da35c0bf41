"""The copilot HTTP server: FastAPI app, storage (``server.db``) and API-key access control.

Run it with ``copilot serve``; create keys with ``copilot keys create``. The HTTP contract is in
``shared/spec/DESIGN.md`` and the README.
"""
