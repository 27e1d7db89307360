"""REST: intake."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hotline import intake, views
from hotline.api.deps import ChannelActorDep, ServicesDep, require
from hotline.models import Role

router = APIRouter(prefix="/api")


@router.post("/intake", response_model=views.TicketOut, status_code=201, tags=["intake"])
async def submit_intake(
    body: intake.IntakeRequest, response: Response, services: ServicesDep, actor: ChannelActorDep
) -> views.TicketOut:
    """The one intake point over HTTP. A repeated (channel, external_id) answers 200 with the same ticket.

    Concurrent requests of this process are made together, one transaction and one commit for them all
    (``hotline.intake_batch``); each is answered once its batch has committed."""
    if actor.user_id is not None:
        require(actor, Role.agent, Role.dispatcher, Role.supervisor)
    # refused before it waits for a batch (the batch checks again: ``intake.submit_many``)
    intake.check_request(body, actor, services.settings.max_text_chars)
    answer = await services.intake_batcher.submit(body, actor)
    if not answer.created:
        response.status_code = 200
    return answer.ticket
