"""The Chinese word for every code a person sees: ticket states and kinds, channels, callback satisfaction, history
events, roles, emergency lines, accountability rules, states and decisions.

This is their one home: the server's own texts (``status_label`` in the ticket views, the desk's channel chart)
and the desk's pages (through ``GET /api/desk/config``) read them from here. Plain data, no imports.
"""

from __future__ import annotations

STATUS_LABELS: dict[str, str] = {
    "received": "已受理",
    "answered": "直接办结",
    "transferred": "已转警",
    "merged": "已并案",
    "dispatched": "已派单",
    "signed": "已签收",
    "replied": "已答复",
    "callback": "已回访",
    "closed": "已归档",
    "returned": "已退单",
    "reopened": "重办",
    "awaiting_citizen": "待补充",
}

KIND_LABELS: dict[str, str] = {
    "consultation": "咨询",
    "help": "求助",
    "complaint": "投诉",
    "report": "举报",
    "suggestion": "建议",
    "praise": "表扬",
}

CHANNEL_LABELS: dict[str, str] = {
    "phone": "电话",
    "wechat": "微信",
    "forum": "网络论坛",
    "web": "网站",
    "open311": "Open311",
    "walk_in": "来访",
    "email": "邮件",
}

SATISFACTION_LABELS: dict[str, str] = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}

#: ``TicketEvent.type`` -> the history's word for it (actions and the system's own events)
EVENT_LABELS: dict[str, str] = {
    "receive": "受理",
    "answer": "直接答复",
    "transfer": "转警",
    "follow_up": "关联工单",
    "merge": "并案",
    "dispatch": "派单",
    "sign": "签收",
    "return": "退单",
    "refuse_return": "驳回退单",
    "request_info": "一次性告知",
    "provide_info": "市民已补充",
    "reply": "办结答复",
    "request_extension": "申请延期",
    "decide_extension": "延期审批",
    "callback": "回访",
    "close": "归档",
    "reopen": "重办",
    "remind": "催办",
    "supervise": "督办",
    "respond_supervision": "督办回复",
    "accountability": "问责",
    "recategorize": "更正分类",
    "comment": "备注",
    "deadline_warning": "时限预警",
    "overdue": "超期",
    "escalation": "超期升级",
    "ticket_gone": "已改派他单位",
    "callback_attempt": "回访未接通",
    "supervision_overdue": "督办超期",
    "call": "通话记录",
    "missed_call": "未接来电",
    "voicemail": "语音留言",
    "survey_call": "自动回访电话",
    "citizen_message": "市民补充",
    "attachment_refused": "附件未能保存",
    "attachment_retry": "重新获取附件",
}

ROLE_LABELS: dict[str, str] = {
    "agent": "话务员",
    "dispatcher": "派单员",
    "unit_handler": "承办单位",
    "supervisor": "督办员",
    "admin": "管理员",
}

#: the lines a ticket is transferred to (``transfer``'s ``line``)
EMERGENCY_LINE_LABELS: dict[str, str] = {
    "110": "110 公安",
    "119": "119 消防",
    "120": "120 急救",
    "122": "122 交通事故",
}

#: ``AccountabilityCase.rule``: what opened the case, in a few words
CASE_RULE_LABELS: dict[str, str] = {
    "manual": "督办员立案",
    "overdue": "超期未办结",
    "refused_returns": "多次退单被驳回",
    "closed_unsolved": "未解决即归档",
}

CASE_STATE_LABELS: dict[str, str] = {
    "opened": "待单位说明",
    "explained": "已说明，待督办员决定",
    "upheld": "维持问责",
    "dismissed": "撤销问责",
}

#: ``SupervisionOrder.state``: a 督办 order waits for the unit's written answer, or has it
ORDER_STATE_LABELS: dict[str, str] = {
    "open": "待单位回复",
    "responded": "单位已回复",
}

#: ``accountability``'s ``decision``
CASE_DECISION_LABELS: dict[str, str] = {
    "open": "立案问责",
    "explain": "单位说明",
    "uphold": "维持问责",
    "dismiss": "撤销问责",
}

#: a ticket's outcome in a scorecard figure (the drill-down's filter)
OUTCOME_LABELS: dict[str, str] = {
    "met": "达标",
    "missed": "未达标",
    "pending": "待定",
    "na": "不适用",
}

#: states of a message on the ticket's conversation: what came in (inbound) and what went back (outbox)
DELIVERY_LABELS: dict[str, str] = {
    "accepted": "已接收，待登记",
    "processing": "登记中",
    "done": "已登记",
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "failed": "发送失败",
}

#: what a message sent back to the citizen is
OUTBOX_KIND_LABELS: dict[str, str] = {
    "accepted": "受理通知",
    "reply": "办理结果",
    "closed": "办结通知",
    "survey": "回访",
    "status": "进度答复",
    "answer": "直接答复",
    "message": "消息",
    "sms": "短信",
    "survey_call": "回访电话",
    "ticket_received": "受理通知",
    "ticket_joined": "补充确认",
    "ticket_answered": "直接答复",
    "ticket_replied": "办理结果",
    "ticket_closed": "办结通知",
    "ticket_merged": "并案通知",
    "ticket_transferred": "转交紧急部门通知",
    "ticket_reassigned": "改派通知",
}

#: a ticket's state as the citizen's own page says it (``GET /api/public/tickets/…``): plainer than the desk's words
PUBLIC_STATUS_LABELS: dict[str, str] = {
    "received": "已受理，正在分派",
    "answered": "已答复办结",
    "transferred": "已转交110/119/120/122等紧急部门",
    "merged": "已与同一问题的其他诉求合并办理",
    "dispatched": "已转交承办单位",
    "signed": "承办单位正在办理",
    "replied": "承办单位已答复，等待回访",
    "callback": "已回访",
    "closed": "已办结",
    "returned": "正在重新确定承办单位",
    "reopened": "正在重新办理",
    "awaiting_citizen": "需要您补充信息，请留意来电或短信",
}

#: ``TicketAttachment.kind``: what a file that came with a message is
ATTACHMENT_KIND_LABELS: dict[str, str] = {
    "image": "图片",
    "audio": "语音",
    "recording": "录音",
    "document": "文件",
}

#: ``TicketAttachment.state``
ATTACHMENT_STATE_LABELS: dict[str, str] = {
    "pending": "待获取",
    "fetching": "获取中",
    "stored": "已保存",
    "refused": "未能保存",
    "linked": "外部链接",
}

#: a ticket's status as the citizen reads it in WeChat (the desk's own words, such as 退单, stay inside the hotline)
CITIZEN_STATUS_LABELS: dict[str, str] = {
    "received": "已受理，正在分派",
    "answered": "已答复",
    "transferred": "已转有关部门处置",
    "merged": "已与同一问题的诉求合并办理",
    "dispatched": "办理中",
    "signed": "办理中",
    "returned": "办理中",
    "reopened": "重新办理中",
    "awaiting_citizen": "待您补充材料",
    "replied": "已答复",
    "callback": "已答复",
    "closed": "已办结",
}

#: whether a knowledge article is offered today (``hotline.knowledge.validity``); admins see every state
KNOWLEDGE_VALIDITY_LABELS: dict[str, str] = {
    "current": "有效",
    "expired": "已过期",
    "pending": "未生效",
}
