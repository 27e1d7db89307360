"""``X-Twilio-Signature``: is this request really from Twilio?

Twilio signs the full URL it requested plus the sorted form fields with the account's auth token (HMAC-SHA1).
Behind a proxy the Host header and scheme this service sees are not the URL Twilio requested, so the URL is rebuilt
from the configured public base URL (``HOTLINE_PUBLIC_BASE_URL``) plus the path and query of the request, never
from the Host header. ``twilio.request_validator.RequestValidator`` does the arithmetic (with and without the
default port, as Twilio's own signing is inconsistent about it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

__all__ = ["SIGNATURE_HEADER", "SignatureRefused", "TwilioSignature", "signed_url"]


class _Fields:
    """Form fields with repeated keys, in the shape ``RequestValidator`` reads (iteration and ``getlist``)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = list(items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key for key, _ in self._items))

    def getlist(self, key: str) -> list[str]:
        return [value for k, value in self._items if k == key]


class SignatureRefused(Exception):
    """The request is unsigned or its signature does not match: answer 403 and create nothing."""

    def __init__(self, reason: str, url: str) -> None:
        super().__init__(f"{reason} Twilio signature for {url}")
        self.reason = reason
        self.url = url


def signed_url(base_url: str, path: str, query: str = "") -> str:
    """The URL Twilio requested and signed: the public base URL plus the path (plus the query, if any)."""
    return f"{base_url.rstrip('/')}{path}{'?' + query if query else ''}"


class TwilioSignature:
    """Checks webhook signatures for one account (auth token) and one public base URL."""

    def __init__(self, auth_token: str, public_base_url: str) -> None:
        if not auth_token:
            raise ValueError("an auth token is needed to check Twilio's signatures")
        if not public_base_url:
            raise ValueError("the public base URL is needed to check Twilio's signatures")
        self._validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/")

    def url_for(self, path: str, query: str = "") -> str:
        return signed_url(self.public_base_url, path, query)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """The signature Twilio would send for a POST of ``params`` to ``url`` (for simulators and tests)."""
        signature: str = self._validator.compute_signature(url, dict(params))
        return signature

    def verify(
        self, path: str, query: str, fields: Iterable[tuple[str, str]] | Mapping[str, str], signature: str | None
    ) -> str:
        """Return the signed URL if ``signature`` is Twilio's for this request; else raise ``SignatureRefused``.

        ``fields``: the POST form as (name, value) pairs (a name may repeat) or a plain mapping.
        """
        url = self.url_for(path, query)
        if not signature:
            raise SignatureRefused("unsigned", url)
        items = fields.items() if isinstance(fields, Mapping) else fields
        if not self._validator.validate(url, _Fields(items), signature):
            raise SignatureRefused("forged", url)
        return url
