"""REST: intake."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hotline import intake, views
from hotline.api.deps import ChannelActorDep, ServicesDep, require
from hotline.models import Role

router = APIRouter(prefix="/api")


@router.post("/intake", response_model=views.TicketOut, status_code=201, tags=["intake"])
async def submit_intake(body: intake.IntakeRequest, services: ServicesDep, actor: ChannelActorDep) -> Response:
    """The one intake point over HTTP. A repeated (channel, external_id) answers 200 with the same ticket.

    Concurrent requests of this process are made together, one transaction and one commit for them all
    (``hotline.intake_batch``); each is answered once its batch has committed."""
    if actor.user_id is not None:
        require(actor, Role.agent, Role.dispatcher, Role.supervisor)
    # refused before it waits for a batch (the batch checks again: ``intake.submit_many``)
    intake.check_request(body, actor, services.settings.max_text_chars)
    answer = await services.intake_batcher.submit(body, actor)
    # written straight from the model (FastAPI's response-model work dumps, validates and serialises it again; the
    # OpenAPI document still names TicketOut)
    return Response(answer.ticket.model_dump_json(), status_code=201 if answer.created else 200,
                    media_type="application/json")
