"""What the IVR says, in Mandarin. Each city may override any prompt (``HOTLINE_PHONE_PROMPTS``, JSON).

The prompts are spoken by a text-to-speech voice, so they are written the way a person says them on the phone:
emergency numbers as 幺幺零 rather than 110, no symbols. Placeholders in braces are filled by ``channels.phone.twiml``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

EMERGENCY_LINES = ("110", "119", "120", "122")


class PhonePrompts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    greeting: str = "您好，欢迎致电12345政务服务便民热线，我们全天24小时为您服务。"
    menu: str = (
        "反映问题或咨询，请按1；查询工单办理进度，请按2；"
        "遇到火灾、治安、急救、交通事故等紧急情况，请按9；转人工服务，请按0。"
    )
    menu_invalid: str = "您的输入有误，请重新选择。"
    menu_no_input: str = "没有收到您的选择。"
    describe: str = "请您简要说明要反映的问题和发生的地点，说完请稍候。"
    describe_received: str = "您反映的内容已记录，正在为您转接话务员，请不要挂机。"
    describe_not_heard: str = "没有听清您的描述，正在为您转接话务员，请不要挂机。"
    emergency_menu: str = "报警请按1，火警请按2，急救请按3，交通事故请按4。"
    emergency_line_names: dict[str, str] = Field(
        default_factory=lambda: {
            "110": "幺幺零报警台",
            "119": "幺幺九火警台",
            "120": "幺二零急救中心",
            "122": "幺二二交通事故报警台",
        }
    )
    emergency_detected: str = "您反映的情况可能十分紧急。"
    transfer: str = "正在为您转接{line}，请不要挂机。"
    connect_agent: str = "正在为您接通话务员，请稍候。"
    callback_agent: str = "正在为您回拨市民，请稍候。"
    three_party: str = "正在为您接通{line}，话务员会一直在线陪同。"
    transfer_failed: str = "转接没有成功，正在为您转接话务员，请不要挂机。"
    status_prompt: str = "请输入十四位工单编号，输入完毕请按井号键。"
    status_answer: str = "工单{number}，{status}。"
    status_not_found: str = "没有查到这个工单。请核对编号，并使用提交工单时的电话号码查询。"
    status_more: str = "如需转人工服务，请按0；结束查询请直接挂机。"
    hold: tuple[str, ...] = (
        "您的来电正在排队，话务员接听后将立即为您服务，请不要挂机。",
        "目前来电较多，请您耐心等候。",
    )
    hold_position: str = "您前面还有{position}位来电。"
    voicemail: str = (
        "现在暂时没有空闲的话务员。请在提示音后留言，说明您的问题、地点和联系方式，"
        "说完请按井号键，我们会尽快给您回电。"
    )
    voicemail_night: str = (
        "现在是夜间值守时段。请在提示音后留言，说明您的问题、地点和联系方式，"
        "说完请按井号键，我们会尽快给您回电。"
    )
    voicemail_thanks: str = "您的留言已收到，我们会尽快处理并给您回电，再见。"
    voicemail_empty: str = "没有收到您的留言，如有需要请再次来电，再见。"
    goodbye: str = "感谢您的来电，再见。"
    too_many_calls: str = "您的来电过于频繁，请稍后再拨。如遇紧急情况，请拨打110、119或120，再见。"
    survey_intro: str = "您好，这里是12345政务服务便民热线，现在对您反映的工单{number}进行回访。"
    survey_solved: str = "您反映的问题是否已经解决？已解决请按1，没有解决请按2，也可以直接说出来。"
    survey_satisfaction: str = "您对办理结果是否满意？满意请按1，基本满意请按2，不满意请按3，也可以直接说出来。"
    survey_not_heard: str = "没有听清您的回答。"
    survey_thanks: str = "感谢您的评价，祝您生活愉快，再见。"
    survey_no_answer: str = "没有收到您的回答，我们会再与您联系，再见。"

    @field_validator("emergency_line_names")
    @classmethod
    def _every_line_named(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [line for line in EMERGENCY_LINES if not value.get(line)]
        if missing:
            raise ValueError(f"emergency_line_names needs a spoken name for {', '.join(missing)}")
        return value

    @field_validator("hold")
    @classmethod
    def _some_hold_message(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(value):
            raise ValueError("hold needs at least one non-empty message")
        return value
