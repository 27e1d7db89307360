"""Forum settings from the environment: ``HOTLINE_FORUM_BOARDS`` (JSON, board slug → board), validated at start-up.

A board: ``{"title": "网络问政", "site_url": "https://bbs.example.cn/forum.php?mod=forumdisplay&fid=2",
"feed_url": "https://bbs.example.cn/forum.php?mod=rss&fid=2", "encoding": null, "secrets": ["..."]}``.
``feed_url`` is polled when set; ``secrets`` sign pushes and "marked as posted" requests (two while rotating);
``encoding`` overrides a wrong declaration in the feed. ``HOTLINE_FORUM_POLL_SECONDS`` (default 300): how often the
worker polls each board's feed (a failing feed backs off further on its own).

Demo value (``HOTLINE_DEMO=1``): one board ``wenzheng`` with the push secret ``demo-forum-secret`` and no feed.
Outside demo mode an unset ``HOTLINE_FORUM_BOARDS`` means no boards (the channel is off), and the service refuses
to start with the demo secret or any secret shorter than 16 characters.

This module imports nothing of ours: ``hotline.settings`` holds these settings, and the core must not pull the
channel in with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, HttpUrl, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_FORUM_SECRET = "demo-forum-secret"
MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class FeedConfig:
    """One board's feed. ``encoding`` overrides what the forum declares, for forums that declare it wrongly."""

    board: str
    url: str
    encoding: str | None = None


class Board(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=100)
    site_url: HttpUrl
    feed_url: HttpUrl | None = None
    encoding: str | None = Field(default=None, max_length=40)
    secrets: tuple[str, ...] = Field(default=(), max_length=2)


def _demo_boards() -> dict[str, Board]:
    site = HttpUrl("http://bbs.example.cn/forum.php?mod=forumdisplay&fid=2")
    return {"wenzheng": Board(title="网络问政", site_url=site, secrets=(DEMO_FORUM_SECRET,))}


class ForumSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_FORUM_", env_file=".env", extra="ignore")

    demo: bool = Field(default=False, validation_alias=AliasChoices("HOTLINE_DEMO", "demo"))
    boards: dict[str, Board] = Field(default_factory=lambda data: _demo_boards() if data.get("demo") else {})
    poll_seconds: float = Field(default=300.0, ge=5.0, le=86_400.0)

    @model_validator(mode="after")
    def _check(self) -> ForumSettings:
        bad_slugs = [slug for slug in self.boards if not slug.isascii() or not slug.replace("-", "").isalnum()]
        if bad_slugs:
            raise ValueError(f"board slugs are ASCII letters, digits and '-': {', '.join(bad_slugs)}")
        if self.demo:
            return self
        weak = sorted(slug for slug, board in self.boards.items()
                      if any(s == DEMO_FORUM_SECRET or len(s) < MIN_SECRET_CHARS for s in board.secrets))
        if weak:
            raise ValueError(
                f"HOTLINE_FORUM_BOARDS still holds demo or short secrets for {', '.join(weak)}; "
                f"give each board a random secret of at least {MIN_SECRET_CHARS} characters"
            )
        return self

    def feeds(self) -> list[FeedConfig]:
        """The boards to poll, for the worker."""
        return [FeedConfig(board=slug, url=str(board.feed_url), encoding=board.encoding)
                for slug, board in self.boards.items() if board.feed_url is not None]
