"""Access rules of the desk pages: which roles see which desk views."""

from __future__ import annotations

from hotline.models import Role

SUPERVISORS = (Role.supervisor, Role.admin)
FRONT_DESK = (Role.agent, Role.dispatcher, Role.supervisor)

