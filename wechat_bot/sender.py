"""The WeChat channel's outbox ``Sender``: the citizen's notices (``hotline.notices``) as WeChat messages.

Each notice goes as a customer-service text message (客服消息), which WeChat allows within 48 hours of the
citizen's last message. Outside that window (WeChat answers 45015/45047) it goes as a template message when
``HOTLINE_WECHAT_NOTICE_TEMPLATE_ID`` is configured, else it is parked as failed (``PermanentFailure``), visible
on the ticket. WeChat errors that a later attempt may cure (busy, network, token) are raised for the outbox to
retry with back-off; the rest are permanent.

WeChat's message APIs take no idempotency key: a worker that dies between sending and marking the row sent makes
the outbox send it again, and the citizen may read that notice twice. That is the one duplicate left, and the
harmless direction (a notice never goes missing).
"""

from __future__ import annotations

from hotline import notices, outbox
from hotline.models import OutboxMessage
from wechat_bot import texts as say
from wechat_bot.client import OutsideReplyWindow, WeChatClient, WeChatError
from wechat_bot.texts import DEFAULT_TEXTS, STATUS_WORDS, Texts


def notice_text(row: OutboxMessage, texts: Texts = DEFAULT_TEXTS) -> str:
    """What the citizen reads for one notice row."""
    number = str(row.payload.get("number", ""))
    reply = str(row.payload.get("reply", ""))
    if row.kind == notices.RECEIVED:
        return say.accepted(number, texts)
    if row.kind == notices.JOINED:
        return say.merged_into(number, texts)
    if row.kind == notices.ANSWERED:
        return say.answered(number, reply, texts)
    if row.kind == notices.REPLIED:
        return say.unit_replied(number, reply, texts)
    if row.kind == notices.CLOSED:
        return say.closed(number, texts)
    raise outbox.PermanentFailure(f"the WeChat sender has no wording for a {row.kind!r} notice")


class WeChatSender:
    """``hotline.outbox.Sender`` for the channel "wechat" (see the module docstring)."""

    def __init__(self, client: WeChatClient, template_id: str | None = None, texts: Texts = DEFAULT_TEXTS) -> None:
        self.client = client
        self.template_id = template_id
        self.texts = texts

    def __call__(self, row: OutboxMessage) -> str | None:
        content = notice_text(row, self.texts)
        try:
            try:
                self.client.send_text(row.recipient, content)
                return None
            except OutsideReplyWindow:
                if not self.template_id:
                    raise
            number = str(row.payload.get("number", ""))
            msgid = self.client.send_template(row.recipient, self.template_id, {
                "first": self.texts.template_first if row.kind != notices.CLOSED else content,
                "keyword1": number,
                "keyword2": STATUS_WORDS.get(str(row.payload.get("status", "")), "办理中"),
                "remark": self.texts.template_remark.format(number=number),
            })
            return f"template:{msgid}"
        except WeChatError as exc:
            if exc.retryable:
                raise
            raise outbox.PermanentFailure(str(exc)) from exc
