import pickle
import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from nlp.classifier import TextFeatures
from nlp.segment import _CJK, Segmenter, join_segmented


def test_city_words_stay_whole_after_add_words():
    seg = Segmenter()
    assert "燃气泄漏" not in seg.cut("家里燃气泄漏了")
    assert seg.add_words(["燃气泄漏", "明湖市湖滨区人民路街道", " "]) == 2
    assert "燃气泄漏" in seg.cut("家里燃气泄漏了")
    assert "明湖市湖滨区人民路街道" in seg.cut("我住在明湖市湖滨区人民路街道")


def test_punctuation_and_whitespace_are_not_words():
    assert Segmenter().cut("请问，公积金！  怎么提取？") == ["请问", "公积金", "怎么", "提取"]


def test_segmented_text_gives_the_same_words_as_raw_text():
    seg = Segmenter(["燃气泄漏"])
    raw = "小区燃气泄漏，物业一直不处理"
    assert seg.cut("小区 燃气 泄漏 物业 一直 不 处理") == seg.cut(raw)


def test_spaces_between_latin_or_digits_are_kept_as_one_space():
    assert join_segmented("G2  栋 320 室") == "G2栋320室"
    assert join_segmented("G2   320") == "G2 320"
    assert join_segmented("Ａ３区") == "A3区"


def _join_by_patterns(text: str) -> str:
    """join_segmented as it was written first (NFKC, then look-around patterns): the rule the fast one keeps."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])", "", text)
    return re.sub(r"\s+", " ", text).strip()


# Characters of every kind the rule treats differently: CJK, fullwidth forms NFKC changes, a combining accent
# after them, circled digits, ASCII and Unicode whitespace (ideographic space, no-break space, tabs, newlines).
_TEXT = st.text(
    alphabet="燃气泄漏了、「」《》\ufa0e，。！？：；（）…．Ａ３①℃a1 G\u3000\u00a0\t\n\u0301\u2003﹝-", max_size=40
)


@given(_TEXT)
def test_join_segmented_is_nfkc_and_the_whitespace_rule_of_the_patterns(text: str) -> None:
    assert join_segmented(text) == _join_by_patterns(text)


def test_join_segmented_keeps_nfkc_of_characters_it_does_not_replace_itself():
    assert join_segmented("面积５０㎡，约①号楼 ⑵") == "面积50m2,约1号楼(2)"
    assert join_segmented("Ａ\u0301 区") == "Á区"


def test_jieba_backend_reads_the_same_dictionary_format():
    fast, slow = Segmenter(["燃气泄漏"]), Segmenter(["燃气泄漏"], backend="jieba")
    text = "燃气泄漏请尽快处理"
    assert fast.cut(text) == slow.cut(text)


def test_segmenter_pickles_with_its_city_words():
    seg = Segmenter(["幸福里社区"], hmm=False)
    copy = pickle.loads(pickle.dumps(seg))
    assert copy.words == ("幸福里社区",) and copy.hmm is False
    assert "幸福里社区" in copy.cut("幸福里社区停水")


def test_segmented_and_raw_messages_give_the_same_features():
    docs = [("", "小区燃气泄漏，物业不管。"), ("", "学校乱收费，家长不满！"), ("", "公交车太少了")]
    feats = TextFeatures().fit(docs)
    raw = feats.transform([("", "小区燃气泄漏，物业不管。")]).toarray()
    segmented = feats.transform([("", "小区 燃气 泄漏 物业 不管")]).toarray()
    assert (raw == segmented).all()


def test_whitespace_around_a_text_does_not_change_its_join():
    for text in ["燃气 泄漏 了", " G2 320 ", "\u3000Ａ３区 有人占道\n", "¨ x ", ""]:
        joined = join_segmented(text)
        assert join_segmented(f" {text}") == join_segmented(f"{text}\t ") == joined
        # a title and its text joined each on their own are the two joined as one across a full stop
        assert f"{join_segmented(text)}。{join_segmented('燃气 泄漏')}" == join_segmented(f"{text} 。 燃气 泄漏")
