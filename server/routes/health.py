"""Operations: ``/healthz`` (alive), ``/readyz`` (models and database ready), ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from server import service
from server.deps import MetricsDep
from server.metrics import CONTENT_TYPE_LATEST
from server.schemas import HealthPublic, ReadyPublic

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthPublic)
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyPublic, responses={503: {"model": ReadyPublic}})
def readyz(request: Request) -> Any:
    """A bundle is loaded and the database answers (503 otherwise)."""
    ready = service.readiness(request.app.state)
    return JSONResponse(ready, status_code=200 if ready["status"] == "ready" else 503)


@router.get("/metrics", response_class=Response)
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics (text exposition format).

    With several workers (``PROMETHEUS_MULTIPROC_DIR`` set), the sums over every worker, whichever
    one answers. A plain ``def``: reading the workers' files runs in the thread pool.
    """
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
