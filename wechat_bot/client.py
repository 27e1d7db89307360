"""The WeChat API client (httpx, synchronous: the worker and the outbox call it, never a request handler).

Access token: every API call carries one (``/cgi-bin/token``, valid 7,200 s). Fetching a new token invalidates the
one before (after a short grace period), so with several processes only ONE may fetch at a time and all share its
result: ``RedisTokenStore`` keeps the token in Redis with its expiry and takes a Redis lock to refresh it; whoever
waited for the lock finds the new token there and does not fetch again. ``MemoryTokenStore`` does the same within
one process (the embedded, no-Redis default). A token is refreshed ``REFRESH_MARGIN_SECONDS`` before it expires.
When WeChat rejects a token anyway (40001: another party fetched one, or it was revoked), the client refreshes it
once, unless another process already has, and repeats the call once.

Errors are ``WeChatError`` subclasses whose ``retryable`` says whether the same call may succeed later:
``WeChatTemporaryError`` (network, 5xx, system busy, quota; retry with back-off), ``TokenRejected`` (still
rejected after one refresh; retry later), ``OutsideReplyWindow`` (45015: the citizen last wrote more than 48 hours
ago, or 45047: too many customer-service messages since; not retryable, send a template/subscription message
instead), ``MediaTooLarge`` and ``WeChatRefused`` (anything else WeChat refuses: not retryable).

WeChat shows ``\\uXXXX`` escapes literally, so JSON bodies are sent as UTF-8 with ``ensure_ascii=False``. httpx logs
request URLs at INFO, and WeChat puts the AppSecret and the access token in the query: a log filter on the
``httpx`` logger blanks both.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import redis

from wechat_bot.settings import WeChatSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
REFRESH_MARGIN_SECONDS = 300
TOKEN_PATH = "/cgi-bin/token"
TOKEN_CODES = {40001: "invalid access token", 40014: "invalid access token", 42001: "access token expired"}
WINDOW_CODES = {45015: "the citizen last wrote more than 48 hours ago",
                45047: "too many customer-service messages since the citizen last wrote"}
TEMPORARY_CODES = {-1: "WeChat is busy", 45009: "the daily API quota is used up", 45011: "API called too often"}
KNOWN_CODES = {40003: "invalid openid", 40007: "invalid media_id", 40013: "invalid appid", 40037: "invalid template id",
               40125: "invalid AppSecret", 40164: "this server's IP address is not on the account's whitelist",
               43004: "the citizen has unfollowed the account", 48001: "the account may not use this API"}


class WeChatError(Exception):
    """A failed WeChat API call; ``retryable``: would the same call succeed later?"""

    retryable = False

    def __init__(self, message: str, errcode: int | None = None, errmsg: str = "") -> None:
        super().__init__(message)
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatTemporaryError(WeChatError):
    retryable = True


class TokenRejected(WeChatError):
    retryable = True


class OutsideReplyWindow(WeChatError):
    """Customer-service messages are closed for this citizen: send a template/subscription message instead."""


class MediaTooLarge(WeChatError):
    pass


class WeChatRefused(WeChatError):
    pass


def error_for(errcode: int, errmsg: str) -> WeChatError:
    """The exception for a non-zero errcode."""
    text = f"WeChat errcode {errcode} ({errmsg})"
    if errcode in TOKEN_CODES:
        return TokenRejected(f"{text}: {TOKEN_CODES[errcode]}", errcode, errmsg)
    if errcode in WINDOW_CODES:
        return OutsideReplyWindow(f"{text}: {WINDOW_CODES[errcode]}", errcode, errmsg)
    if errcode in TEMPORARY_CODES:
        return WeChatTemporaryError(f"{text}: {TEMPORARY_CODES[errcode]}", errcode, errmsg)
    if errcode in KNOWN_CODES:
        return WeChatRefused(f"{text}: {KNOWN_CODES[errcode]}", errcode, errmsg)
    return WeChatRefused(text, errcode, errmsg)


class _RedactQuerySecrets(logging.Filter):
    PATTERN = re.compile(r"((?:secret|access_token)=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.PATTERN.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


if not any(isinstance(f, _RedactQuerySecrets) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactQuerySecrets())


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # epoch seconds

    def usable(self, now: float) -> bool:
        return now < self.expires_at - REFRESH_MARGIN_SECONDS


class TokenStore(Protocol):
    def current(self) -> AccessToken | None:
        """The shared token, if one is stored and not yet expired."""

    def refresh(self, fetch: Callable[[], AccessToken], stale: str | None = None) -> AccessToken:
        """A usable token other than ``stale``: the one another refresher just stored, or ``fetch()``'s, stored."""


def _refresh(store_current: Callable[[], AccessToken | None], save: Callable[[AccessToken], None],
             fetch: Callable[[], AccessToken], stale: str | None, now: float) -> AccessToken:
    """Inside the store's lock: fetch only if nobody stored a usable, different token meanwhile."""
    cached = store_current()
    if cached is not None and cached.usable(now) and cached.value != stale:
        return cached
    token = fetch()
    save(token)
    return token


class MemoryTokenStore:
    """One process's token (the embedded mode without Redis)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def current(self) -> AccessToken | None:
        token = self._token
        return token if token is not None and token.expires_at > self._clock() else None

    def refresh(self, fetch: Callable[[], AccessToken], stale: str | None = None) -> AccessToken:
        with self._lock:
            return _refresh(self.current, self._save, fetch, stale, self._clock())

    def _save(self, token: AccessToken) -> None:
        self._token = token


_PROCESS_STORES: dict[tuple[str, str | None], MemoryTokenStore] = {}
_PROCESS_STORES_LOCK = threading.Lock()


def process_token_store(appid: str, api_base: str | None) -> MemoryTokenStore:
    """This process's one token store per account: the outbox sender and the media fetcher share it, so neither
    fetches a token that invalidates the other's."""
    with _PROCESS_STORES_LOCK:
        return _PROCESS_STORES.setdefault((appid, api_base), MemoryTokenStore())


class RedisTokenStore:
    """The token shared by every process through Redis; one refresher at a time under a Redis lock.

    The lock's timeout outlives the token request (the client's timeout is far shorter), so it is not released
    by expiry while its holder still fetches. A process that cannot get the lock within ``wait_seconds`` gives up
    with a temporary error rather than fetching on its own.
    """

    def __init__(self, client: redis.Redis, appid: str, prefix: str = "hotline:",
                 clock: Callable[[], float] = time.time, lock_seconds: float = 30.0,
                 wait_seconds: float = 10.0) -> None:
        self._redis = client
        self.key = f"{prefix}wechat:{appid}:access_token"
        self._clock = clock
        self._lock_seconds = lock_seconds
        self._wait_seconds = wait_seconds

    def current(self) -> AccessToken | None:
        try:
            raw = self._redis.get(self.key)
        except redis.RedisError as exc:
            raise WeChatTemporaryError(f"the token cache in Redis is unavailable: {exc}") from exc
        if raw is None:
            return None
        data = json.loads(raw)
        token = AccessToken(str(data["value"]), float(data["expires_at"]))
        return token if token.expires_at > self._clock() else None

    def _save(self, token: AccessToken) -> None:
        ttl_ms = max(1, int((token.expires_at - self._clock()) * 1000))
        self._redis.set(self.key, json.dumps({"value": token.value, "expires_at": token.expires_at}), px=ttl_ms)

    def refresh(self, fetch: Callable[[], AccessToken], stale: str | None = None) -> AccessToken:
        with self._locked():
            return _refresh(self.current, self._save, fetch, stale, self._clock())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._redis.lock(self.key + ":refresh", timeout=self._lock_seconds,
                                blocking_timeout=self._wait_seconds)
        try:
            acquired = lock.acquire()
        except redis.RedisError as exc:
            raise WeChatTemporaryError(f"the token lock in Redis is unavailable: {exc}") from exc
        if not acquired:
            raise WeChatTemporaryError(f"another process has been refreshing the access token for "
                                       f"{self._wait_seconds:g} s")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("the access-token lock expired before its holder released it")


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str
    filename: str


class WeChatClient:
    """The calls the hotline makes to WeChat, for one official account."""

    API_BASE_URL = "https://api.weixin.qq.com"

    def __init__(self, appid: str, secret: str, tokens: TokenStore | None = None, base_url: str | None = None,
                 http: httpx.Client | None = None, timeout: float = 5.0, max_media_bytes: int = 10 * 1024 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        self.appid = appid
        self._secret = secret
        self._clock = clock
        self.tokens: TokenStore = tokens if tokens is not None else MemoryTokenStore(clock)
        self.base_url = (base_url or self.API_BASE_URL).rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self.max_media_bytes = max_media_bytes

    @classmethod
    def from_settings(cls, settings: WeChatSettings, redis_client: redis.Redis | None = None,
                      prefix: str = "hotline:") -> WeChatClient:
        """Redis-shared tokens when the deployment has Redis, else this process's own."""
        tokens: TokenStore = (RedisTokenStore(redis_client, settings.appid, prefix) if redis_client is not None
                              else process_token_store(settings.appid, settings.api_base))
        return cls(settings.appid, settings.secret, tokens, base_url=settings.api_base,
                   max_media_bytes=settings.max_media_bytes)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WeChatClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- access token -------------------------------------------------------------------------------------------

    def fetch_access_token(self) -> AccessToken:
        """A new token from WeChat (invalidating the previous one); call it only through ``self.tokens.refresh``."""
        response = self._send("GET", TOKEN_PATH, params={"grant_type": "client_credential", "appid": self.appid,
                                                        "secret": self._secret})
        data = self._json(response)
        try:
            return AccessToken(str(data["access_token"]), self._clock() + int(data["expires_in"]))
        except (KeyError, TypeError, ValueError):
            raise WeChatTemporaryError("the token answer has no access_token and expires_in") from None

    def access_token(self) -> str:
        token = self.tokens.current()
        if token is None or not token.usable(self._clock()):
            token = self.tokens.refresh(self.fetch_access_token)
        return token.value

    # -- messages -----------------------------------------------------------------------------------------------

    def send_text(self, openid: str, content: str) -> None:
        """A customer-service text message (only within 48 hours of the citizen's last message to the account)."""
        self._post("/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": content}})

    def send_template(self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None) -> int:
        """A template message (模板消息); its msgid (WeChat reports delivery with TEMPLATESENDJOBFINISH)."""
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {k: {"value": v} for k, v in data.items()}}
        if url:
            body["url"] = url
        result = self._post("/cgi-bin/message/template/send", body)
        return int(result.get("msgid", 0))

    def send_subscription(self, openid: str, template_id: str, data: Mapping[str, str],
                          page: str | None = None) -> None:
        """A subscription message (订阅通知), for a citizen who subscribed to the template."""
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {k: {"value": v} for k, v in data.items()}}
        if page:
            body["page"] = page
        self._post("/cgi-bin/message/subscribe/bizsend", body)

    def create_menu(self, menu: Mapping[str, Any]) -> None:
        self._post("/cgi-bin/menu/create", menu)

    # -- media --------------------------------------------------------------------------------------------------

    def download_media(self, media_id: str, max_bytes: int | None = None) -> Media:
        """A file the citizen sent (image, voice), refused with MediaTooLarge above the limit."""
        limit = self.max_media_bytes if max_bytes is None else max_bytes
        return self._with_token(lambda token: self._download(media_id, token, limit))

    def _download(self, media_id: str, token: str, limit: int) -> Media:
        url = self.base_url + "/cgi-bin/media/get"
        try:
            with self._http.stream("GET", url, params={"access_token": token, "media_id": media_id}) as response:
                self._check_status(response)
                content_type = response.headers.get("content-type", "application/octet-stream")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise MediaTooLarge(f"media {media_id} has {declared} bytes, more than the limit of {limit}")
                chunks: list[bytes] = []
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > limit:
                        raise MediaTooLarge(f"media {media_id} is larger than the limit of {limit} bytes")
                    chunks.append(chunk)
        except httpx.TransportError as exc:
            raise WeChatTemporaryError(f"media download failed: {type(exc).__name__}") from exc
        content = b"".join(chunks)
        if content_type.startswith(("application/json", "text/plain")):
            self._raise_for_errcode(self._decode(content))
            raise WeChatTemporaryError("the media API answered with JSON but no file")
        match = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
        return Media(content, content_type.split(";")[0].strip(), match.group(1) if match else media_id)

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self._with_token(lambda token: self._json(self._send("POST", path, params={"access_token": token},
                                                                    content=payload)))

    def _with_token(self, call: Callable[[str], T]) -> T:
        token = self.access_token()
        try:
            return call(token)
        except TokenRejected:
            log.info("WeChat rejected the access token; refreshing it once")
            fresh = self.tokens.refresh(self.fetch_access_token, stale=token)
            return call(fresh.value)

    def _send(self, method: str, path: str, params: Mapping[str, str], content: bytes | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/json; charset=utf-8"} if content is not None else None
        try:
            response = self._http.request(method, self.base_url + path, params=params, content=content,
                                          headers=headers)
        except httpx.TransportError as exc:
            raise WeChatTemporaryError(f"{path} failed: {type(exc).__name__}") from exc
        self._check_status(response)
        return response

    @staticmethod
    def _check_status(response: httpx.Response) -> None:
        if response.status_code >= 500:
            raise WeChatTemporaryError(f"WeChat answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise WeChatRefused(f"WeChat answered HTTP {response.status_code}")

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        data = self._decode(response.content)
        self._raise_for_errcode(data)
        return data

    @staticmethod
    def _decode(content: bytes) -> dict[str, Any]:
        try:
            data = json.loads(content)
        except ValueError:
            raise WeChatTemporaryError("WeChat answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise WeChatTemporaryError("WeChat answered JSON that is not an object")
        return data

    @staticmethod
    def _raise_for_errcode(data: Mapping[str, Any]) -> None:
        errcode = data.get("errcode", 0)
        if isinstance(errcode, int) and errcode != 0:
            raise error_for(errcode, str(data.get("errmsg", "")))
