"""The fake WeChat API, served once per test session and emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.wechat_api import FakeWeChat, running


@pytest.fixture(scope="session")
def _wechat_server() -> Iterator[FakeWeChat]:
    with running(FakeWeChat()) as fake:
        yield fake


@pytest.fixture
def wechat_api(_wechat_server: FakeWeChat) -> FakeWeChat:
    _wechat_server.reset()
    return _wechat_server
