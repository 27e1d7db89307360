"""Kind of request and urgency, read from the text by rules (no model).

Why rules and not a model here: an agent must be able to see *why* a ticket was flagged urgent or read as a
complaint ("燃气泄漏" -> 119), and a wrong urgent flag costs a phone call while a missed one costs a life. Rules
are short, testable one by one, and the lists below are what a hotline supervisor would review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlp.segment import join_segmented


def _text(title: str, text: str) -> str:
    """Title and text as one, joined (``join_segmented``) each on its own: what joining them as one gives (the
    full stop takes the whitespace beside it either way), but the text's join is the one the kind rules, the
    classifier and the duplicate and knowledge searches already asked for, so it is remembered, not redone."""
    return f"{join_segmented(title or '')}。{join_segmented(text or '')}"


# ---------------------------------------------------------------------------------------------------------
# Kind of request
# ---------------------------------------------------------------------------------------------------------
# (cue, weight). A cue in the title counts double: citizens put the point of the message in the title.
_KIND_CUES: dict[str, tuple[tuple[str, float], ...]] = {
    "report": (
        ("举报", 3),
        ("检举", 3),
        ("揭发", 3),
        ("偷排", 2),
        ("传销", 1.5),
        ("无证经营", 1.5),
        ("非法", 1),
        ("违法", 1),
        ("违规", 0.5),
        ("偷税", 2),
        ("行贿", 2),
        ("受贿", 2),
    ),
    "complaint": (
        ("投诉", 3),
        ("不满", 1.5),
        ("扰民", 1.5),
        ("乱收费", 1.5),
        ("态度恶劣", 2),
        ("不作为", 2),
        ("拖欠", 1.5),
        ("欠薪", 1.5),
        ("推诿", 1.5),
        ("强烈要求", 1),
        ("噪音", 1),
        ("太差", 1),
    ),
    "help": (
        ("求助", 3),
        ("帮忙", 2),
        ("帮帮", 2.5),
        ("救救", 3),
        ("求求", 2.5),
        ("急需", 1.5),
        ("走投无路", 2.5),
        ("无家可归", 2),
        ("怎么办", 1),
        ("请帮", 2),
    ),
    "suggestion": (
        ("建议", 2.5),
        ("提议", 2.5),
        ("呼吁", 2),
        ("希望能", 1),
        ("能否增设", 2),
        ("可否", 1),
        ("意见", 1),
        ("应该增加", 1.5),
        ("增设", 1),
    ),
    "consultation": (
        ("咨询", 3),
        ("请问", 2),
        ("如何办理", 2.5),
        ("怎么办理", 2.5),
        ("怎样办理", 2.5),
        ("需要什么", 2),
        ("什么材料", 2),
        ("哪些材料", 2),
        ("怎么申请", 2.5),
        ("如何申请", 2.5),
        ("怎么补办", 2.5),
        ("想问一下", 2),
        ("去哪里", 1.5),
        ("在哪里办", 2),
        ("多少?", 1),
        ("能不能", 1),
        ("是否", 1),
        ("哪里可以", 2),
        ("多少钱", 1),
        ("什么时候", 1),
        ("政策", 0.5),
        ("吗？", 1),
        ("吗?", 1),
    ),
    "praise": (
        ("表扬", 3),
        ("点赞", 2.5),
        ("赞扬", 3),
        ("感谢信", 3),
        ("锦旗", 3),
        ("致谢", 2),
        ("好评", 2),
        ("为民办实事", 1.5),
        ("感谢", 1),
    ),
}
# Polite closings are not praise: "谢谢" ends half the complaints.
_POLITE = re.compile(r"(谢谢|感谢您|感谢你|先谢|在此感谢|非常感谢|万分感谢)[！!。.，,]*$")
# When scores tie, the heavier kind wins: a report or complaint needs action, praise needs none.
_KIND_PRIORITY = ("report", "complaint", "help", "suggestion", "consultation", "praise")
#: every kind this detector may answer (ties go to the earlier one)
KINDS: tuple[str, ...] = _KIND_PRIORITY


def detect_kind_with_cue(title: str, text: str) -> tuple[str, str | None]:
    """Kind of request and the cue word that decided it (None when nothing matched: a complaint by default).

    Default is "complaint" because a 12345 message without cue words almost always describes a problem to fix.
    """
    title_n = join_segmented(title or "")
    body = join_segmented(text or "")
    body = _POLITE.sub("", body)
    scores: dict[str, float] = {}
    best_cue: dict[str, tuple[float, str]] = {}
    for kind, cues in _KIND_CUES.items():
        total = 0.0
        for cue, weight in cues:
            in_body = body.count(cue)
            hits = (2 * title_n.count(cue) if title_n else 0) + (in_body if in_body < 3 else 3)
            if hits:
                total += weight * hits
                if weight * hits > best_cue.get(kind, (0.0, ""))[0]:
                    best_cue[kind] = (weight * hits, cue)
        if total:
            scores[kind] = total
    if not scores:
        return "complaint", None
    kind = max(_KIND_PRIORITY, key=lambda k: (scores.get(k, 0.0), -_KIND_PRIORITY.index(k)))
    return kind, best_cue[kind][1]


def detect_kind(title: str, text: str) -> str:
    """One of consultation/help/complaint/report/suggestion/praise."""
    return detect_kind_with_cue(title, text)[0]


# ---------------------------------------------------------------------------------------------------------
# Urgency
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Urgency:
    urgent: bool
    reason: str | None = None
    emergency_line: str | None = None


NOT_URGENT = Urgency(False, None, None)


@dataclass(frozen=True)
class _Rule:
    reason: str
    line: str | None
    pattern: re.Pattern[str]


# Order matters: the first rule that fires decides the line (a fire with injured people is a 119 call first).
_URGENT_RULES: tuple[_Rule, ...] = (
    _Rule(
        "燃气泄漏",
        "119",
        re.compile(
            r"(燃气|煤气|天然气|液化气)(管道?)?(泄漏|泄露|漏气|外泄)|漏气|(煤气|燃气|天然气|液化气)味"
            r"|闻到.{0,6}(煤气|燃气|天然气)|臭鸡蛋味"
        ),
    ),
    _Rule("火灾", "119", re.compile(r"着火|起火|失火|火灾|大火|冒烟|浓烟|烧起来|火势|爆炸")),
    _Rule("有人被困", "119", re.compile(
            r"被困|困在|电梯困人|困人|关在电梯|卡在电梯|电梯[^。！!？?]{0,8}(卡住|卡在|停在半)[^。！!？?]{0,20}(里面|人)"
            r"|里面关着|掉进.{0,4}(井|河|水)|落水"
        ),),
    _Rule(
        "有人受伤或昏迷",
        "120",
        re.compile(
            r"受伤|重伤|昏迷|晕倒|昏倒|不省人事|流血不止|大量出血|流了(好多|很多|一地)血|躺在地上(起不来|不动)"
            r"|呼吸困难|心脏骤停|抽搐|倒地不起|休克|中毒"
        ),
    ),
    _Rule(
        "交通事故",
        "122",
        re.compile(r"车祸|交通事故|撞车|追尾|被车撞|撞人|撞伤|翻车|肇事逃逸|(两|几)辆车[^。！!？?]{0,4}撞"),
    ),
    _Rule(
        "暴力或盗窃",
        "110",
        re.compile(r"打架|斗殴|打人|持刀|砍人|抢劫|抢夺|行凶|家暴|殴打|正在偷|入室盗窃|小偷|扒窃|绑架|威胁要杀"),
    ),
    _Rule(
        "供水管道爆裂",
        None,
        re.compile(r"爆管|(水管|管道|主管|自来水管)(突然)?(爆裂|破裂|爆了|爆开)|水漫|大量(冒水|漏水)"),
    ),
    _Rule(
        "大面积停水停电停气",
        None,
        re.compile(
            r"(大面积|整个小区|全小区|整栋|整条街|全村|几百户|上百户|上千户|全镇|片区)[^。！!？?]{0,8}(停水|停电|停气|断水|断电)"
            r"|(停水|停电|停气|断水|断电)[^。！!？?]{0,12}(大面积|整个小区|全小区|几百户|上百户|上千户)"
        ),
    ),
)

# Cues that the incident is not happening now: past time, negation, prevention, aftermath (claims, repairs).
_PAST_BEFORE = re.compile(
    r"(上次|上回|之前|以前|去年|前年|曾经|曾|上个月|上月|上周|前几年|当年|多年前|那次|年前|月前|天前)[^。！!？?]{0,8}$"
)
_NEG_BEFORE = re.compile(
    r"(没有|没|无|未|(?<!是)不是|防止|预防|避免|谨防|以防|防范|杜绝|如果|万一|担心|怕)[^。！!？?，,]{0,3}$"
)
_AFTER_NOT_NOW = re.compile(
    r"^[^。！!？?]{0,3}(后的|之后|以后|隐患|演练|演习|预防|赔偿|理赔|保险|补偿|鉴定|医药费|报销|认定|安全检查|宣传|事件的处理)"
)


def detect_urgency(title: str, text: str) -> Urgency:
    """Is someone in danger right now? Which emergency line should the agent transfer to?

    A cue preceded by a past-time or negation word ("上次着火", "没有漏气", "防止火灾") or followed by an
    aftermath word ("着火后的赔偿", "火灾隐患") does not count: those are ordinary tickets, not emergencies.
    """
    full = _text(title, text)
    for rule in _URGENT_RULES:
        for m in rule.pattern.finditer(full):
            before = full[max(0, m.start() - 12) : m.start()]
            after = full[m.end() : m.end() + 12]
            if _PAST_BEFORE.search(before) or _NEG_BEFORE.search(before) or _AFTER_NOT_NOW.search(after):
                continue
            return Urgency(True, rule.reason, rule.line)
    return NOT_URGENT
