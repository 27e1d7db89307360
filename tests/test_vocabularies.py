"""The plain libraries keep their own copies of the core's vocabularies (they import nothing of ours); these
tests keep every copy equal to the one home in ``hotline.models``."""

from hotline.models import AREA_LEVELS, Kind
from nlp import places, signals
from routing import deadlines


def test_the_gazetteer_uses_the_directorys_area_levels() -> None:
    assert places.LEVELS == AREA_LEVELS


def test_every_kind_has_a_default_deadline_policy_and_nothing_else_does() -> None:
    assert set(deadlines.KINDS) == {k.value for k in Kind}


def test_the_kind_detector_only_answers_kinds_the_core_knows() -> None:
    assert set(signals.KINDS) == {k.value for k in Kind}
