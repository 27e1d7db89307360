"""The WeChat channel's outbox ``Sender``: delivers the citizen's notices, worded by the core (``hotline.notices``;
the row's payload holds the text), as WeChat messages.

Each notice goes as a customer-service text message (客服消息), which WeChat allows within 48 hours of the
citizen's last message. Outside that window (WeChat answers 45015/45047) it goes as a template message when
``HOTLINE_WECHAT_NOTICE_TEMPLATE_ID`` is configured (the notice as ``first``, the number and the status), else it
is parked as failed (``PermanentFailure``), visible on the ticket. WeChat errors that a later attempt may cure
(busy, network, token) are raised for the outbox to retry with back-off; the rest are permanent.

WeChat's message APIs take no idempotency key: a worker that dies between sending and marking the row sent makes
the outbox send it again, and the citizen may read that notice twice. That is the one duplicate left, and the
harmless direction (a notice never goes missing).
"""

from __future__ import annotations

from hotline import outbox
from hotline.labels import CITIZEN_STATUS_LABELS
from hotline.models import OutboxMessage
from wechat_bot.client import OutsideReplyWindow, WeChatClient, WeChatError
from wechat_bot.texts import DEFAULT_TEXTS, Texts


class WeChatSender:
    """``hotline.outbox.Sender`` for the channel "wechat" (see the module docstring)."""

    def __init__(self, client: WeChatClient, template_id: str | None = None, texts: Texts = DEFAULT_TEXTS) -> None:
        self.client = client
        self.template_id = template_id
        self.texts = texts

    def __call__(self, row: OutboxMessage) -> str | None:
        content = str(row.payload.get("text") or "")
        if not content:
            raise outbox.PermanentFailure(f"the {row.kind!r} notice has no text to deliver")
        try:
            try:
                self.client.send_text(row.recipient, content)
                return None
            except OutsideReplyWindow:
                if not self.template_id:
                    raise
            number = str(row.payload.get("number", ""))
            msgid = self.client.send_template(row.recipient, self.template_id, {
                "first": content,
                "keyword1": number,
                "keyword2": CITIZEN_STATUS_LABELS.get(str(row.payload.get("status", "")), "办理中"),
                "remark": self.texts.template_remark.format(number=number),
            })
            return f"template:{msgid}"
        except WeChatError as exc:
            if exc.retryable:
                raise
            raise outbox.PermanentFailure(str(exc)) from exc
