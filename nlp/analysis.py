"""Text analysis beyond the category: kind of request, urgency, places; all rule-based and explainable.

Why rules and not a model here: an agent must be able to see *why* a ticket was flagged urgent or read as a
complaint ("燃气泄漏" -> 119), and a wrong urgent flag costs a phone call while a missed one costs a life. Rules
are short, testable one by one, and the lists below are what a hotline supervisor would review.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nlp.segment import join_segmented

if TYPE_CHECKING:
    from nlp.classifier import Model

KINDS = ("consultation", "help", "complaint", "report", "suggestion", "praise")
LEVELS = ("city", "district", "street", "community")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}

# Terms that must stay one word for the segmenter (classifier features, duplicate search, knowledge search).
DOMAIN_TERMS: tuple[str, ...] = (
    "燃气泄漏",
    "煤气泄漏",
    "天然气泄漏",
    "煤气味",
    "燃气味",
    "电梯困人",
    "电梯故障",
    "停水",
    "停电",
    "停气",
    "爆管",
    "水管爆裂",
    "噪音扰民",
    "占道经营",
    "违章建筑",
    "违建",
    "拖欠工资",
    "欠薪",
    "物业费",
    "公积金",
    "医保",
    "社保",
    "养老保险",
    "低保",
    "廉租房",
    "公租房",
    "垃圾清运",
    "油烟扰民",
    "渣土车",
    "共享单车",
    "路灯不亮",
    "井盖",
    "12345",
)


def _text(title: str, text: str) -> str:
    return join_segmented(f"{title or ''}。{text or ''}")


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
            hits = 2 * title_n.count(cue) + min(body.count(cue), 3)
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
            r"|闻到.{0,6}(煤气|燃气|天然气)"
        ),
    ),
    _Rule("火灾", "119", re.compile(r"着火|起火|失火|火灾|大火|冒烟|浓烟|烧起来|火势|爆炸")),
    _Rule("有人被困", "119", re.compile(r"被困|困在|电梯困人|困人|关在电梯|卡在电梯|掉进.{0,4}(井|河|水)|落水")),
    _Rule(
        "有人受伤或昏迷",
        "120",
        re.compile(r"受伤|重伤|昏迷|晕倒|昏倒|不省人事|流血不止|大量出血|呼吸困难|心脏骤停|抽搐|倒地不起|休克|中毒"),
    ),
    _Rule("交通事故", "122", re.compile(r"车祸|交通事故|撞车|追尾|被车撞|撞人|撞伤|翻车|肇事逃逸")),
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
    r"(没有|没|无|未|不是|防止|预防|避免|谨防|以防|防范|杜绝|如果|万一|担心|怕)[^。！!？?，,]{0,3}$"
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


# ---------------------------------------------------------------------------------------------------------
# Places
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlaceEntry:
    code: str
    name: str
    level: str
    parent_code: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaceMatch:
    """A place named in the text. ``matched`` is the text that named it; None when only implied by a child."""

    code: str
    name: str
    level: str
    matched: str | None


class Gazetteer:
    """Find the city's places in a message; a community implies its street, district and city.

    Matching is one compiled regex alternation of all names and aliases, longest first, so "明湖区人民路街道"
    is found as the street, not as the shorter district name inside it. Names shared by several places (two
    "新村社区") are disambiguated by the other places the message names; if that fails all candidates are kept.
    """

    def __init__(self, entries: Iterable[PlaceEntry]) -> None:
        self.entries: dict[str, PlaceEntry] = {}
        self._by_name: dict[str, list[str]] = {}
        for entry in entries:
            if entry.level not in _LEVEL_RANK:
                raise ValueError(f"place {entry.code}: level must be one of {', '.join(LEVELS)}, not {entry.level!r}")
            self.entries[entry.code] = entry
            for name in (entry.name, *entry.aliases):
                key = join_segmented(name)
                if len(key) >= 2 and entry.code not in self._by_name.setdefault(key, []):
                    self._by_name[key].append(entry.code)
        names = sorted(self._by_name, key=len, reverse=True)
        self._regex = re.compile("|".join(map(re.escape, names))) if names else None

    def __len__(self) -> int:
        return len(self.entries)

    def ancestors(self, code: str) -> list[str]:
        """Parent, grandparent, ... of ``code`` (stops at unknown codes and cycles)."""
        out: list[str] = []
        seen = {code}
        parent = self.entries[code].parent_code if code in self.entries else None
        while parent and parent in self.entries and parent not in seen:
            out.append(parent)
            seen.add(parent)
            parent = self.entries[parent].parent_code
        return out

    def find(self, text: str) -> list[PlaceMatch]:
        """Places in ``text``, most specific level first (community, street, district, city), then by position."""
        if self._regex is None:
            return []
        norm = join_segmented(text or "")
        hits: list[tuple[int, str, list[str]]] = [
            (m.start(), m.group(0), self._by_name[m.group(0)]) for m in self._regex.finditer(norm)
        ]
        named = {code for _, _, codes in hits for code in codes}
        chosen: dict[str, tuple[int, str | None]] = {}
        for pos, matched, codes in hits:
            if len(codes) > 1:
                # Keep the candidates whose ancestors or descendants are also named in the text.
                related = [
                    c
                    for c in codes
                    if any(a in named for a in self.ancestors(c))
                    or any(c in self.ancestors(o) for o in named if o != c)
                ]
                codes = related or codes
            for code in codes:
                if code not in chosen or chosen[code][1] is None:
                    chosen[code] = (pos, matched)
        for code, (pos, _) in list(chosen.items()):
            for parent in self.ancestors(code):
                if parent not in chosen:
                    chosen[parent] = (pos, None)
        matches = sorted(chosen.items(), key=lambda kv: (-_LEVEL_RANK[self.entries[kv[0]].level], kv[1][0], kv[0]))
        return [
            PlaceMatch(code, self.entries[code].name, self.entries[code].level, matched)
            for code, (_, matched) in matches
        ]

    def related(self, a: str | None, b: str | None) -> bool:
        """Same-place rule for duplicates: unknown matches anything; else one is the other or its ancestor."""
        if a is None or b is None or a == b:
            return True
        return a in self.ancestors(b) or b in self.ancestors(a)

    def names(self) -> list[str]:
        """Every name and alias (for the segmenter's user dictionary)."""
        return list(self._by_name)


def user_words(gazetteer: Gazetteer | None = None, unit_names: Iterable[str] = ()) -> list[str]:
    """Words the Segmenter must keep whole: place names and aliases, unit names, and domain terms."""
    words: list[str] = list(DOMAIN_TERMS)
    if gazetteer is not None:
        words.extend(gazetteer.names())
    words.extend(n for n in unit_names if n)
    seen: set[str] = set()
    return [w for w in words if not (w in seen or seen.add(w))]  # type: ignore[func-returns-value]


# ---------------------------------------------------------------------------------------------------------
# Everything together
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CategoryGuess:
    label: str
    probability: float


@dataclass
class Analysis:
    categories: list[CategoryGuess] = field(default_factory=list)
    kind: str = "complaint"
    urgency: Urgency = NOT_URGENT
    places: list[PlaceMatch] = field(default_factory=list)
    auto_dispatch: bool = False
    kind_cue: str | None = None


class TextAnalyzer:
    """Category (model), kind, urgency and places of one message.

    ``auto_dispatch`` is True only when the model's top probability clears the threshold chosen at training
    time (tickets above it were >= 97 % correct on validation data) *and* the message is not urgent: an urgent
    message always goes to a person first.
    """

    def __init__(self, model: Model | None = None, gazetteer: Gazetteer | None = None, k: int = 3) -> None:
        self.model = model
        self.gazetteer = gazetteer
        self.k = k

    def analyze(self, title: str, text: str) -> Analysis:
        return self.analyze_many([(title, text)])[0]

    def analyze_many(self, items: Sequence[tuple[str, str]]) -> list[Analysis]:
        """Batch form of ``analyze`` (one classifier call for all messages)."""
        guesses: list[list[tuple[str, float]]] = (
            self.model.predict_many(items, k=self.k) if self.model is not None else [[] for _ in items]
        )
        out = []
        for (title, text), top in zip(items, guesses, strict=True):
            categories = [CategoryGuess(label, p) for label, p in top]
            kind, cue = detect_kind_with_cue(title, text)
            urgency = detect_urgency(title, text)
            places = self.gazetteer.find(f"{title}。{text}") if self.gazetteer is not None else []
            auto = bool(
                self.model is not None
                and categories
                and categories[0].probability >= self.model.threshold
                and not urgency.urgent
            )
            out.append(Analysis(categories, kind, urgency, places, auto, cue))
        return out
