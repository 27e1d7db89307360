"""The REST API under ``/api``, one module per concern. Endpoints are thin: parse, call the domain, commit once,
shape the answer; the rules live in the domain modules (``hotline.workflow``, ``hotline.visibility`` …).

Errors carry their status (``hotline.errors``): 401 no/expired token, 403 wrong role, 404 unknown ticket or another
unit's, 409 illegal transition or stale version, 422 bad payload naming the field.
"""

from fastapi import APIRouter

from hotline.api import (
    attachments,
    audit,
    auth,
    calendar,
    catalogue,
    channels,
    directory,
    inbound,
    intake,
    knowledge,
    ops,
    policies,
    public,
    scorecards,
    supervision,
    tickets,
    users,
)

ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (auth, intake, inbound, channels, tickets, attachments, directory, catalogue, users, knowledge,
                   calendar, policies, supervision, scorecards, audit, public, ops)
)
