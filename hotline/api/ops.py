"""REST: operations — liveness, readiness (``hotline.health``) and the Prometheus scrape (``hotline.metrics``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hotline import health
from hotline.api.deps import get_services

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (no dependency is asked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a check failed; its reason is in the body"}})
async def readyz(request: Request) -> JSONResponse:
    """200 when database, schema revision, Redis (if configured) and classifier model are all ready, else 503."""
    results = await health.readiness(get_services(request))
    checks: dict[str, Any] = {r.name: r.as_json() for r in results}
    failing = [r for r in results if not r.ok]
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse({
        "status": "unavailable",
        "detail": "服务暂不可用：" + "；".join(f"{r.name} {r.zh}" for r in failing),
        "message": "; ".join(f"{r.name}: {r.detail}" for r in failing),
        "checks": checks,
    }, status_code=503, headers={"Retry-After": "5"})
