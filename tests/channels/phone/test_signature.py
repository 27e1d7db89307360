"""X-Twilio-Signature: checked over the public base URL plus path and query, never the Host header."""

from __future__ import annotations

import base64
import hmac
from hashlib import sha1

import pytest
from twilio.request_validator import RequestValidator

from channels.phone.signature import SignatureRefused, TwilioSignature
from tests.channels.phone.conftest import AUTH_TOKEN, PUBLIC_BASE

FORM = {"CallSid": "CA" + "1" * 32, "From": "+8613812345678", "To": "+8657112345", "Digits": "1"}


def twilio_signs(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """What Twilio itself sends: the validator's own algorithm over the URL it requested."""
    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature


@pytest.fixture
def checker() -> TwilioSignature:
    return TwilioSignature(AUTH_TOKEN, PUBLIC_BASE)


def test_a_request_twilio_signed_is_accepted(checker: TwilioSignature) -> None:
    url = PUBLIC_BASE + "/channels/twilio/voice/menu"
    assert checker.verify("/channels/twilio/voice/menu", "", FORM, twilio_signs(url, FORM)) == url


def test_the_query_string_is_part_of_what_is_signed(checker: TwilioSignature) -> None:
    url = PUBLIC_BASE + "/channels/twilio/voice/menu?tries=1"
    signature = twilio_signs(url, FORM)
    assert checker.verify("/channels/twilio/voice/menu", "tries=1", FORM, signature) == url
    with pytest.raises(SignatureRefused):
        checker.verify("/channels/twilio/voice/menu", "tries=2", FORM, signature)


def test_a_changed_field_is_forged(checker: TwilioSignature) -> None:
    signature = twilio_signs(PUBLIC_BASE + "/channels/twilio/voice/menu", FORM)
    with pytest.raises(SignatureRefused) as refused:
        checker.verify("/channels/twilio/voice/menu", "", {**FORM, "Digits": "9"}, signature)
    assert refused.value.reason == "forged"


def test_a_signature_made_with_another_token_is_forged(checker: TwilioSignature) -> None:
    url = PUBLIC_BASE + "/channels/twilio/voice"
    with pytest.raises(SignatureRefused, match="forged"):
        checker.verify("/channels/twilio/voice", "", FORM, twilio_signs(url, FORM, token="f" * 32))


@pytest.mark.parametrize("signature", [None, ""])
def test_an_unsigned_request_is_refused(checker: TwilioSignature, signature: str | None) -> None:
    with pytest.raises(SignatureRefused) as refused:
        checker.verify("/channels/twilio/voice", "", FORM, signature)
    assert refused.value.reason == "unsigned"


def test_behind_a_proxy_the_internal_address_is_not_what_twilio_signed(checker: TwilioSignature) -> None:
    # The proxy forwards https://12345.minghu.gov.cn/… to http://10.0.0.5:8000/…: Twilio signed the public URL.
    internal = "http://10.0.0.5:8000/channels/twilio/voice"
    with pytest.raises(SignatureRefused):
        checker.verify("/channels/twilio/voice", "", FORM, twilio_signs(internal, FORM))
    public = PUBLIC_BASE + "/channels/twilio/voice"
    assert checker.verify("/channels/twilio/voice", "", FORM, twilio_signs(public, FORM)) == public


def test_twilio_signing_with_the_default_port_is_accepted(checker: TwilioSignature) -> None:
    with_port = "https://12345.minghu.gov.cn:443/channels/twilio/voice"
    assert checker.verify("/channels/twilio/voice", "", FORM, twilio_signs(with_port, FORM))


def test_repeated_fields_are_signed_value_by_value(checker: TwilioSignature) -> None:
    # Twilio's algorithm: the URL, then each name followed by its value, names sorted, each value of a name sorted.
    fields = [("StatusCallbackEvent", "leave"), ("StatusCallbackEvent", "join"), ("CallSid", "CA1")]
    url = PUBLIC_BASE + "/channels/twilio/conference"
    payload = url + "CallSidCA1" + "StatusCallbackEventjoin" + "StatusCallbackEventleave"
    signature = base64.b64encode(hmac.new(AUTH_TOKEN.encode(), payload.encode(), sha1).digest()).decode()
    assert checker.verify("/channels/twilio/conference", "", fields, signature) == url
    with pytest.raises(SignatureRefused):
        checker.verify("/channels/twilio/conference", "", fields[1:], signature)


def test_a_checker_needs_its_token_and_base() -> None:
    with pytest.raises(ValueError, match="auth token"):
        TwilioSignature("", PUBLIC_BASE)
    with pytest.raises(ValueError, match="public base URL"):
        TwilioSignature(AUTH_TOKEN, "")
