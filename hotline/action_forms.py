"""The action table as the desk reads it (``GET /api/actions``): every workflow action with its states, roles and
payload schema, and for the actions a desk offers as a form, how each payload field is asked for.

The payload models in ``hotline.workflow`` say what a field is (type, limits, allowed values, required or not);
``FORMS`` adds only what a person needs to fill it in: the order of the fields, their Chinese label, the widget
(a unit picker, a ticket reference, …) and the summary's access key. A form may ask for more than the model
requires (a direct answer must say something), never for a field the model does not take: ``action_form`` looks
every field up in the model's schema and fails on one it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from hotline import workflow
from hotline.labels import CASE_DECISION_LABELS, EMERGENCY_LINE_LABELS

#: how the desk draws a field (agent_ui/static/js/ticket.js ``fieldInput``)
Widget = Literal[
    "text", "textarea", "lines", "number", "datetime", "select", "approve",
    "unit", "units", "category", "ticketref", "order", "case",
]


class Option(BaseModel):
    value: str
    label: str
    #: only these roles are offered the option (None: everyone who may take the action)
    roles: list[str] | None = None


class FormField(BaseModel):
    name: str
    label: str
    widget: Widget
    required: bool
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: list[Option] | None = None


class ActionForm(BaseModel):
    key: str | None  # access key of the form's summary (Alt+key in Chromium)
    primary: bool  # the form is the main thing to do on the ticket (签收): its button stands out
    fields: list[FormField]


class ActionOut(BaseModel):
    name: str
    label: str
    from_states: list[str]
    to_state: str | None
    roles: list[str]
    fields: dict[str, Any]  # the payload's JSON schema properties
    form: ActionForm | None  # None: no desk offers this action as a generic form


@dataclass(frozen=True)
class Ask:
    """One field of a form: the payload field ``name``, drawn as ``widget`` under ``label``."""

    name: str
    widget: Widget
    label: str
    required: bool | None = None  # None: as the payload model says
    minimum: float | None = None  # None: the model's own minimum
    step: float | None = None
    option_labels: Mapping[str, str] | None = None
    option_roles: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Form:
    fields: tuple[Ask, ...] = ()
    key: str | None = None
    primary: bool = False


def _note(label: str, widget: Widget = "textarea", required: bool | None = None) -> Ask:
    return Ask("note", widget, label, required=required)


#: The forms, in the order of the fields shown. ``callback`` and ``callback_attempt`` have none: the callback page
#: asks for them in its own way.
FORMS: dict[str, Form] = {
    "dispatch": Form((Ask("unit_id", "unit", "主办单位"), Ask("co_unit_ids", "units", "协办单位"),
                      _note("派单说明", "text")), key="d"),
    "answer": Form((_note("答复市民的内容", required=True),), key="a"),
    "merge": Form((Ask("parent_id", "ticketref", "并入工单（编号或ID）"), _note("说明", "text")), key="m"),
    "transfer": Form((Ask("line", "select", "转接线路", option_labels=EMERGENCY_LINE_LABELS),
                      _note("说明", "text")), key="t"),
    "follow_up": Form((Ask("text", "textarea", "关联工单的诉求内容（已带入原工单，请写明需承办单位处理的事项）"),
                       Ask("location", "text", "地点"), _note("说明（记入原工单）", "text"))),
    "recategorize": Form((Ask("category_id", "category", "正确分类"), _note("说明", "text")), key="c"),
    "refuse_return": Form((_note("驳回理由"),)),
    "sign": Form(key="s", primary=True),
    "reply": Form((_note("办理结果"), Ask("attachments", "lines", "附件说明（每行一项）")), key="r"),
    "return": Form((_note("退单理由（非本单位职责的依据）"),), key="b"),
    "request_extension": Form((Ask("working_hours", "number", "延长工作小时", minimum=0.5, step=0.5),
                               _note("延期理由")), key="e"),
    "request_info": Form((_note("需要市民补充的全部内容（一次性告知）"),), key="i"),
    "provide_info": Form((_note("补充的内容"),)),
    "respond_supervision": Form((Ask("order_id", "order", "回复的督办件"), _note("督办回复")), key="v"),
    "accountability": Form((Ask("decision", "select", "处理", option_labels=CASE_DECISION_LABELS,
                                option_roles=workflow.CASE_DECIDERS),
                            Ask("case_id", "case", "问责事项"), _note("说明"))),
    "decide_extension": Form((Ask("approve", "approve", "审批结果"), _note("审批意见"))),
    "remind": Form((_note("催办内容"),)),
    "supervise": Form((_note("督办要求"), Ask("due_at", "datetime", "限办时间（可选）"))),
    "reopen": Form((_note("重办理由"),)),
    "close": Form((_note("归档说明", "text"),)),
    "comment": Form((_note("备注"),)),
}


def _field(ask: Ask, schema: Mapping[str, Any]) -> FormField:
    properties: Mapping[str, Any] = schema["properties"]
    if ask.name not in properties:
        raise KeyError(f"the form asks for {ask.name!r}, which the payload {schema['title']} does not take")
    prop = properties[ask.name]
    required = ask.required if ask.required is not None else ask.name in schema.get("required", ())
    options = None
    if "enum" in prop:
        labels = ask.option_labels or {}
        options = [Option(value=v, label=labels.get(v, v),
                          roles=[ask.option_roles[v]] if ask.option_roles and v in ask.option_roles else None)
                   for v in prop["enum"]]
    number = ask.widget == "number"
    return FormField(
        name=ask.name, label=ask.label, widget=ask.widget, required=required,
        minimum=ask.minimum if ask.minimum is not None else (prop.get("minimum") if number else None),
        maximum=prop.get("maximum") if number else None,
        step=ask.step, options=options,
    )


def action_form(action: workflow.Action) -> ActionForm | None:
    """The desk's form for ``action`` (None if it has none), its fields checked against the payload's schema."""
    form = FORMS.get(action.name)
    if form is None:
        return None
    schema = action.payload.model_json_schema()
    return ActionForm(key=form.key, primary=form.primary, fields=[_field(a, schema) for a in form.fields])


def describe_actions() -> list[ActionOut]:
    """The transition table, as data: which action leads from which states to which, for whom, with which form."""
    return [
        ActionOut(
            name=a.name,
            label=a.label,
            from_states=sorted(a.sources),
            to_state=a.target,
            roles=sorted(a.roles),
            fields=a.payload.model_json_schema().get("properties", {}),
            form=action_form(a),
        )
        for a in workflow.ACTIONS.values()
    ]
