"""The phone channel's ``hotline.attachments.Fetcher``: a voicemail's recording from Twilio into the attachment
store (the MP3 at ``<RecordingUrl>.mp3``, with the account's credentials, as Twilio's API serves it).

Only URLs on Twilio's own hosts are fetched (the RecordingUrl comes in a signed webhook, but the hotline sends its
credentials to nobody else); they go to ``HOTLINE_TWILIO_API_BASE`` like every other Twilio request. The download
is streamed and stops at the recording's size limit. Twilio's 404 (the recording was deleted) and any other 4xx
are refusals with a reason; 5xx and network errors are retried by the store.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from channels.phone.rest import RebasedHttpClient
from channels.phone.settings import PhoneSettings
from hotline import attachments
from hotline.models import TicketAttachment


def is_twilio_url(url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


def make_fetcher(settings: PhoneSettings, http: httpx.Client | None = None) -> attachments.Fetcher:
    rebase = RebasedHttpClient(settings.api_base).rebase
    client = http or httpx.Client(timeout=30.0)

    def fetch(row: TicketAttachment, max_bytes: int) -> attachments.Fetched:
        if not is_twilio_url(row.source):
            raise attachments.Refused("录音地址不是 Twilio 的地址，未获取", f"not a Twilio URL: {row.source!r}")
        url = rebase(row.source.removesuffix(".json") + ".mp3")
        with client.stream("GET", url, auth=(settings.twilio_account_sid, settings.auth_token)) as response:
            if response.status_code >= 500:
                raise RuntimeError(f"Twilio answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise attachments.Refused(f"Twilio 未提供该录音（HTTP {response.status_code}），未能获取",
                                          f"Twilio answered HTTP {response.status_code} for {row.source}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise attachments.too_large(row.kind, max_bytes)
            parts: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise attachments.too_large(row.kind, max_bytes)
                parts.append(chunk)
            content_type = response.headers.get("content-type", "audio/mpeg").split(";")[0].strip()
        return attachments.Fetched(b"".join(parts), content_type)

    return fetch
