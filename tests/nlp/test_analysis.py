import pytest

from nlp.analyzer import TextAnalyzer
from nlp.classifier import Model, Record
from nlp.places import Gazetteer, PlaceEntry, user_words
from nlp.segment import DOMAIN_TERMS
from nlp.signals import Urgency, detect_kind, detect_urgency

GAZ = Gazetteer(
    [
        PlaceEntry("0", "明湖市", "city", None, ("明湖",)),
        PlaceEntry("01", "湖滨区", "district", "0"),
        PlaceEntry("0101", "人民路街道", "street", "01"),
        PlaceEntry("010101", "幸福里社区", "community", "0101", ("幸福里",)),
        PlaceEntry("0102", "城东街道", "street", "01"),
        PlaceEntry("010201", "新村社区", "community", "0102"),
        PlaceEntry("02", "东山区", "district", "0"),
        PlaceEntry("0201", "东山街道", "street", "02"),
        PlaceEntry("020101", "新村社区", "community", "0201"),
    ]
)


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ("家里燃气泄漏了，闻到很大的煤气味", "燃气泄漏", "119"),
        ("楼道里有很浓的煤气味", "燃气泄漏", "119"),
        ("对面楼起火了，冒出浓烟", "火灾", "119"),
        ("小区电梯困人，已经半小时没人来", "有人被困", "119"),
        ("老人在路边晕倒了，不省人事", "有人受伤或昏迷", "120"),
        ("路口发生车祸，两车相撞", "交通事故", "122"),
        ("有人在楼下打架斗殴，还拿着刀", "暴力或盗窃", "110"),
        ("小区门口主水管爆裂，水漫到路上", "供水管道爆裂", None),
        ("我们整个小区停电了，几百户受影响", "大面积停水停电停气", None),
    ],
)
def test_emergencies_are_urgent_with_the_right_line(text, reason, line):
    assert detect_urgency("", text) == Urgency(True, reason, line)


@pytest.mark.parametrize(
    "text",
    [
        "上次着火后的赔偿问题一直没有解决",
        "小区消防通道被堵，存在火灾隐患",
        "去年工作中受伤，单位不给工伤赔偿",
        "建议小区组织燃气泄漏应急演练",
        "防止燃气泄漏，请物业定期检查管道",
        "我家停水一天了",
        "咨询公积金如何提取",
    ],
)
def test_past_prevention_and_ordinary_problems_are_not_urgent(text):
    assert detect_urgency("", text).urgent is False


def test_urgency_reads_the_title_too():
    assert detect_urgency("紧急：燃气泄漏", "请马上派人来").emergency_line == "119"


@pytest.mark.parametrize(
    ("title", "text", "kind"),
    [
        ("", "咨询一下公积金如何办理提取", "consultation"),
        ("", "请问办理居住证需要什么材料？", "consultation"),
        ("", "老人走失了，求助大家帮忙寻找", "help"),
        ("投诉物业", "物业乱收费，服务太差", "complaint"),
        ("", "举报某工厂夜间偷排污水", "report"),
        ("", "建议在学校门口增设红绿灯", "suggestion"),
        ("表扬", "感谢城管局为民办实事，特此表扬", "praise"),
        ("", "小区路灯坏了很久。谢谢！", "complaint"),
    ],
)
def test_kind_follows_the_cue_words(title, text, kind):
    assert detect_kind(title, text) == kind


def test_a_polite_thank_you_does_not_make_a_complaint_praise():
    assert detect_kind("", "楼下餐馆油烟扰民严重，请尽快处理，谢谢") == "complaint"


def test_community_match_implies_its_street_district_and_city():
    places = GAZ.find("幸福里小区门口垃圾成堆")
    assert [(p.code, p.level, p.matched) for p in places] == [
        ("010101", "community", "幸福里"),
        ("0101", "street", None),
        ("01", "district", None),
        ("0", "city", None),
    ]


def test_ambiguous_name_is_resolved_by_the_district_named_in_the_text():
    places = GAZ.find("东山区新村社区停水")
    assert places[0].code == "020101"
    assert "010201" not in {p.code for p in places}


def test_ambiguous_name_alone_keeps_all_candidates():
    assert {p.code for p in GAZ.find("新村社区停水") if p.level == "community"} == {"010201", "020101"}


def test_longest_name_wins():
    assert GAZ.find("明湖市人民路街道")[0].code == "0101"


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="level"):
        Gazetteer([PlaceEntry("9", "某地", "province")])


def test_related_places_for_duplicate_matching():
    assert GAZ.related("010101", "0101") and GAZ.related(None, "02") and not GAZ.related("010101", "02")


def test_user_words_include_places_aliases_units_and_domain_terms():
    words = user_words(GAZ, ["明湖市燃气公司"])
    assert {"幸福里社区", "幸福里", "明湖市燃气公司", "燃气泄漏"} <= set(words)
    assert len(words) == len(set(words)) and set(DOMAIN_TERMS) <= set(words)


def test_analyzer_without_model_guesses_no_category_and_never_auto_dispatches():
    result = TextAnalyzer(None, GAZ).analyze("", "幸福里小区燃气泄漏")
    assert result.categories == [] and result.auto_dispatch is False
    assert result.urgency.emergency_line == "119" and result.places[0].code == "010101"


def test_urgent_message_is_never_auto_dispatched():
    records = [Record(f"{p}小区停水停电", "水电气热") for p in "东西南北中上下"] + [
        Record(f"{p}区办证窗口排队太久", "政务服务") for p in "东西南北中上下"
    ]
    model = Model.train(records, n_jobs=1)
    model.metadata["auto_dispatch"]["threshold"] = 0.0
    analyzer = TextAnalyzer(model)
    assert analyzer.analyze("", "小区停水了").auto_dispatch is True
    assert analyzer.analyze("", "小区停水了，楼道还有煤气味").auto_dispatch is False
