"""The WeChat channel's ``hotline.attachments.Fetcher``: a citizen's photo or voice message from the media API
(``/cgi-bin/media/get`` with the shared access token), streamed and cut off at the kind's size limit.

WeChat's refusals that no retry can cure (40007: the media_id is unknown or older than WeChat's three days) and a
file over the limit are ``Refused`` with the reason the desk shows; busy, network and token trouble are raised
for the store to retry.
"""

from __future__ import annotations

from hotline import attachments
from hotline.models import TicketAttachment
from wechat_bot.client import MediaTooLarge, WeChatClient, WeChatError

INVALID_MEDIA_ID = 40007


def refusal_reason(error: WeChatError) -> str:
    """What the desk says when WeChat will not give the file."""
    if error.errcode == INVALID_MEDIA_ID:
        return "微信素材已过期或不存在（微信只保留三天，错误码 40007），未能获取"
    if error.errcode is not None:
        return f"微信拒绝提供该文件（错误码 {error.errcode}），未能获取"
    return "微信拒绝提供该文件，未能获取"


def make_fetcher(client: WeChatClient) -> attachments.Fetcher:
    def fetch(row: TicketAttachment, max_bytes: int) -> attachments.Fetched:
        try:
            media = client.download_media(row.source, max_bytes)
        except MediaTooLarge as exc:
            raise attachments.too_large(row.kind, max_bytes) from exc
        except WeChatError as exc:
            if exc.retryable:
                raise
            raise attachments.Refused(refusal_reason(exc), str(exc)) from exc
        return attachments.Fetched(media.content, media.content_type)

    return fetch
