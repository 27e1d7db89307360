"""The attachment store's limits are a city's setting, per kind, with WeChat's own limits as defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hotline.settings import DEFAULT_MAX_BYTES, MIB, Settings


def test_a_city_lowers_one_kinds_limit_and_keeps_the_others() -> None:
    settings = Settings(demo=True, attachment_max_bytes={"image": 5 * MIB})
    assert settings.attachment_max_bytes == {**DEFAULT_MAX_BYTES, "image": 5 * MIB}
    assert Settings(demo=True).attachment_max_bytes == {"image": 10 * MIB, "audio": 2 * MIB, "recording": 8 * MIB,
                                                        "document": 10 * MIB}


@pytest.mark.parametrize("limits", [{"video": MIB}, {"image": 10}, {"audio": 500 * MIB}])
def test_unknown_kinds_and_absurd_limits_are_refused(limits: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="HOTLINE_ATTACHMENT_MAX_BYTES"):
        Settings(demo=True, attachment_max_bytes=limits)
