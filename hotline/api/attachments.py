"""REST: the files that came with a ticket's messages (``hotline.attachments``), for the desk.

``GET /api/attachments/{id}`` answers the stored bytes to whoever may see the ticket (``hotline.visibility``);
anyone else, and a file not stored, gets the same 404 as a missing id, so units cannot probe. The content type is
the one stored, and only types a browser shows as media are served inline; the rest download as
``application/octet-stream``. The file name is made here, never taken from the sender, and the answer may not be
sniffed, framed or scripted.

``POST /api/attachments/{id}/retry``: desk staff (not units) send a refused file back to the worker's fetcher.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from hotline import attachments, workflow
from hotline.api.deps import ActorDep, IdPath, SessionDep, require
from hotline.auth import Actor
from hotline.errors import NotFound
from hotline.models import Ticket, TicketAttachment
from hotline.views import RETRY_ROLES, AttachmentOut, ticket_attachments
from hotline.visibility import may_open_attachment

router = APIRouter(prefix="/api")

#: stored content type -> file extension, for the types served inline (images and the audio browsers play)
INLINE_TYPES = {
    "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp", "image/bmp": "bmp",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/ogg": "ogg",
    "audio/aac": "aac", "audio/mp4": "m4a", "audio/amr": "amr",
}
NOT_FOUND_ZH = "找不到此附件（不存在、尚未保存，或不在您的权限范围内）"


def _visible(session: Session, attachment_id: int, actor: Actor) -> tuple[TicketAttachment, Ticket]:
    """The attachment and its ticket, or the same 404 as a missing id for anyone who may not open it."""
    row = session.get(TicketAttachment, attachment_id)
    try:
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found")
        ticket = workflow.load_visible(session, row.ticket_id, actor)
        if not may_open_attachment(actor, ticket, row.kind):
            raise NotFound(f"attachment {attachment_id} not found")
    except NotFound:
        raise NotFound(f"attachment {attachment_id} not found", zh=NOT_FOUND_ZH) from None
    return row, ticket


@router.get("/attachments/{attachment_id}", tags=["tickets"],
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the stored file"}})
def attachment_content(attachment_id: IdPath, session: SessionDep, actor: ActorDep) -> Response:
    row, _ = _visible(session, attachment_id, actor)
    if row.content is None:
        raise NotFound(f"attachment {attachment_id} not found", zh=NOT_FOUND_ZH)
    content_type = (row.content_type or "").split(";")[0].strip().lower()
    extension = INLINE_TYPES.get(content_type)
    disposition = (f'inline; filename="attachment-{row.id}.{extension}"' if extension
                   else f'attachment; filename="attachment-{row.id}.bin"')
    return Response(row.content, media_type=content_type if extension else "application/octet-stream", headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, no-store"})


@router.post("/attachments/{attachment_id}/retry", response_model=AttachmentOut, tags=["tickets"])
def retry_attachment(attachment_id: IdPath, session: SessionDep, actor: ActorDep) -> AttachmentOut:
    """Desk staff: fetch a refused file again (the cause has gone: the media API is back, the limit was raised)."""
    row, ticket = _visible(session, attachment_id, actor)
    require(actor, *RETRY_ROLES)
    attachments.retry(session, row, ticket, actor)
    session.commit()
    return next(a for a in ticket_attachments(session, ticket, actor) if a.id == attachment_id)
