"""Desk REST: presence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from agent_ui.api.access import SUPERVISORS
from hotline.api.deps import UserDep, require

router = APIRouter(prefix="/api/desk", tags=["desk"])

@router.get("/presence")
async def presence(request: Request, actor: UserDep) -> dict[str, Any]:
    """Who is online, per role and unit, across all workers (supervisors and admins)."""
    require(actor, *SUPERVISORS)
    hub = request.app.state.desk_hub
    snapshot: dict[str, Any] = await hub.presence()
    return snapshot


