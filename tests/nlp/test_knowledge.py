from nlp.knowledge import KnowledgeIndex

ARTICLES = [
    (1, "住房公积金提取", "办理住房公积金提取需要身份证、银行卡和购房合同"),
    (2, "燃气泄漏怎么办", "立即关闭燃气阀门，开窗通风，不要开关电器，拨打119"),
    (3, "养老保险转移接续", "社保养老保险跨省转移接续的办理流程"),
]


def test_best_article_comes_first():
    index = KnowledgeIndex(ARTICLES)
    assert index.search("公积金怎么提取")[0][0] == 1
    assert index.search("家里有煤气味，燃气泄漏")[0][0] == 2


def test_differently_segmented_wording_still_matches_through_bigrams():
    assert KnowledgeIndex(ARTICLES).search("养老保险能不能跨省转")[0][0] == 3


def test_no_shared_term_gives_no_result_and_k_limits():
    index = KnowledgeIndex(ARTICLES)
    assert index.search("xyz") == []
    assert len(index.search("办理", k=1)) == 1
    assert KnowledgeIndex([]).search("公积金") == []


def test_articles_refused_by_keep_leave_their_place_to_the_next_ones():
    index = KnowledgeIndex(ARTICLES)
    query = "燃气泄漏了，公积金和养老保险怎么办理"
    every = index.search(query, k=3)
    assert len(every) == 3
    assert index.search(query, k=2, keep=lambda article_id: article_id != every[0][0]) == every[1:]
    assert index.search(query, k=3, keep=lambda article_id: False) == []
