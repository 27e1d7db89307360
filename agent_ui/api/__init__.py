"""REST endpoints the desk needs beyond the core API, under ``/api/desk``, one module per concern.

They reuse the core's dependencies (session, services, authenticated user) and ``hotline.visibility`` so the rules
are the REST API's own: a unit handler only ever reads its unit's tickets (lead or co-unit).
"""

from fastapi import APIRouter

from agent_ui.api import board, citizens, deadlines, desk_config, hotspots, presence, queues

ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router for module in (deadlines, queues, citizens, board, hotspots, presence, desk_config)
)
