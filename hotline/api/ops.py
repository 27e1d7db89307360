"""REST: operations — liveness, readiness (``hotline.health``) and the Prometheus scrape (``hotline.metrics``)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hotline import auth, health, metrics
from hotline.api.deps import ServicesDep, SessionDep, get_services, require
from hotline.errors import ErrorOut, Unauthorized
from hotline.models import Role

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


_bearer = HTTPBearer(auto_error=False)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text exposition"},
    401: {"model": ErrorOut, "description": "需要 HOTLINE_METRICS_TOKEN 或管理员令牌"},
    403: {"model": ErrorOut, "description": "只有管理员可以查看运行指标"},
})
def scrape(services: ServicesDep, session: SessionDep,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Response:
    """Every API worker's figures added up, plus the database's (``hotline.metrics``). Bearer
    ``HOTLINE_METRICS_TOKEN`` or an admin's token."""
    token = credentials.credentials if credentials is not None else ""
    if not token:
        raise Unauthorized("missing bearer token (HOTLINE_METRICS_TOKEN or an admin's token)",
                           zh="请提供运行指标令牌（HOTLINE_METRICS_TOKEN）或管理员令牌")
    expected = services.settings.metrics_token
    if not (expected and hmac.compare_digest(token.encode(), expected.encode())):
        require(auth.actor_from_token(session, services.settings, token), Role.admin)
    session.rollback()  # the scrape reads through its own sessions; hold no transaction meanwhile
    return Response(metrics.exposition(services.sessions), media_type=metrics.CONTENT_TYPE)
