"""The REST side through the real twilio.rest.Client against the fake Twilio API on 127.0.0.1."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException

from channels.phone.rest import IDEMPOTENCY_HEADER, PhoneRest, RebasedHttpClient, make_client, retryable
from channels.phone.settings import PhoneSettings
from tests.channels.phone.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE, PUBLIC_BASE, phone_settings
from tests.fakes.twilio_api import FakeTwilioApi

CITIZEN = "+8613812345678"


def test_the_survey_call_is_placed_from_the_hotline_with_its_absolute_signed_urls(
    rest: PhoneRest, fake_twilio: FakeTwilioApi
) -> None:
    call_sid = rest.place_survey_call(CITIZEN, "ticket-7-round-1", "20261122000123", key="outbox-41")

    [request] = fake_twilio.requests_to("Calls.json")
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.username == ACCOUNT_SID
    assert request.idempotency_token == "outbox-41"
    assert request.field("To") == CITIZEN
    assert request.field("From") == HOTLINE
    assert request.field("Url") == (
        f"{PUBLIC_BASE}/channels/twilio/survey?survey=ticket-7-round-1&number=20261122000123"
    )
    assert request.field("StatusCallback") == f"{PUBLIC_BASE}/channels/twilio/status?survey=ticket-7-round-1"
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (request.header("User-Agent") or "").startswith("twilio-python/")
    assert call_sid in fake_twilio.calls and call_sid.startswith("CA")


def test_the_emergency_line_joins_the_callers_conference(rest: PhoneRest, fake_twilio: FakeTwilioApi) -> None:
    line_call = rest.add_emergency_line("hotline-CA123", "119", key="transfer-CA123-119")

    [request] = fake_twilio.requests_to("Participants.json")
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Conferences/hotline-CA123/Participants.json"
    assert request.field("To") == "+8657100119"
    assert request.field("From") == HOTLINE
    assert request.field("EarlyMedia") == "true"
    assert request.field("EndConferenceOnExit") == "false"
    assert request.idempotency_token == "transfer-CA123-119"
    assert fake_twilio.participants[line_call]["to"] == "+8657100119"


def test_an_sms_is_sent_with_its_outbox_key(rest: PhoneRest, fake_twilio: FakeTwilioApi) -> None:
    sid = rest.send_sms(CITIZEN, "【12345热线】您反映的问题已受理。", key="sms-9")

    [request] = fake_twilio.requests_to("Messages.json")
    assert request.field("Body") == "【12345热线】您反映的问题已受理。"
    assert request.field("To") == CITIZEN and request.field("From") == HOTLINE
    assert request.idempotency_token == "sms-9"
    assert fake_twilio.messages[sid]["body"] == "【12345热线】您反映的问题已受理。"


def test_a_live_call_is_moved_into_the_three_party_conference(rest: PhoneRest, fake_twilio: FakeTwilioApi) -> None:
    rest.move_to_conference("CA" + "a" * 32, "120", "room-1", key="move-1")

    [request] = fake_twilio.requests_to(f"Calls/CA{'a' * 32}.json")
    assert request.field("Url") == f"{PUBLIC_BASE}/channels/twilio/voice/conference?line=120&room=room-1"


def test_a_retry_after_a_lost_response_does_not_place_a_second_call(
    rest: PhoneRest, fake_twilio: FakeTwilioApi
) -> None:
    fake_twilio.lose_next_responses(1)
    with pytest.raises(TwilioRestException) as lost:
        rest.place_survey_call(CITIZEN, "s-1", "20261122000123", key="outbox-77")
    assert retryable(lost.value)

    sid = rest.place_survey_call(CITIZEN, "s-1", "20261122000123", key="outbox-77")

    assert list(fake_twilio.calls) == [sid]
    assert [r.idempotency_token for r in fake_twilio.requests_to("Calls.json")] == ["outbox-77", "outbox-77"]


def test_different_keys_are_different_calls(rest: PhoneRest, fake_twilio: FakeTwilioApi) -> None:
    first = rest.place_survey_call(CITIZEN, "s-1", "20261122000123", key="outbox-1")
    second = rest.place_survey_call(CITIZEN, "s-1", "20261122000123", key="outbox-2")
    assert first != second and len(fake_twilio.calls) == 2


def test_no_request_outside_an_idempotency_block_carries_a_token(fake_twilio: FakeTwilioApi) -> None:
    settings = phone_settings(twilio_api_base=fake_twilio.base_url)
    make_client(settings).messages.create(to=CITIZEN, from_=HOTLINE, body="测试")
    [request] = fake_twilio.requests
    assert request.header(IDEMPOTENCY_HEADER) is None


def test_twilio_failures_are_retryable_and_refusals_are_not(rest: PhoneRest, fake_twilio: FakeTwilioApi) -> None:
    fake_twilio.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as unavailable:
            rest.send_sms(CITIZEN, "你好", key="sms-1")
        assert unavailable.value.status == 503 and retryable(unavailable.value)
    assert fake_twilio.messages == {}
    rest.send_sms(CITIZEN, "你好", key="sms-1")
    assert len(fake_twilio.messages) == 1

    with pytest.raises(TwilioRestException) as refused:
        rest.send_sms(CITIZEN, "", key="sms-2")
    assert refused.value.status == 400 and refused.value.code == 21602
    assert not retryable(refused.value)


def test_a_lost_connection_is_retryable() -> None:
    settings = phone_settings(twilio_api_base="http://127.0.0.1:9")
    with pytest.raises(Exception) as lost:
        PhoneRest(make_client(settings, timeout=2), settings).send_sms(CITIZEN, "你好", key="k")
    assert retryable(lost.value)


def test_a_wrong_auth_token_is_refused_by_twilio(fake_twilio: FakeTwilioApi) -> None:
    settings = phone_settings(twilio_api_base=fake_twilio.base_url, twilio_auth_token=SecretStr("wrong" * 7))
    with pytest.raises(TwilioRestException) as refused:
        PhoneRest(make_client(settings), settings).send_sms(CITIZEN, "你好", key="k")
    assert refused.value.status == 401 and not retryable(refused.value)


def test_an_api_key_and_secret_authenticate_instead_of_the_auth_token() -> None:
    key, secret = "SK" + "2" * 32, "api-secret-" + "3" * 21
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN, api_keys={key: secret}).running() as fake:
        settings = phone_settings(
            twilio_api_base=fake.base_url, twilio_api_key=key, twilio_api_secret=SecretStr(secret)
        )
        PhoneRest(make_client(settings), settings).send_sms(CITIZEN, "你好", key="k")
        [request] = fake.requests
        assert request.username == key and request.status == 201
        assert request.path.startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/")


def test_only_twilio_hosts_are_moved_to_the_configured_base() -> None:
    client = RebasedHttpClient("http://127.0.0.1:8010/prefix")
    assert client.rebase("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?x=1") == (
        "http://127.0.0.1:8010/prefix/2010-04-01/Accounts/AC1/Calls.json?x=1"
    )
    assert client.rebase("https://api.us1.twilio.com/2010-04-01/x") == "http://127.0.0.1:8010/prefix/2010-04-01/x"
    assert client.rebase("https://example.com/twilio.com/x") == "https://example.com/twilio.com/x"
    assert client.rebase("https://eviltwilio.com/x") == "https://eviltwilio.com/x"


def test_without_an_api_base_the_client_talks_to_twilio_itself(settings: PhoneSettings) -> None:
    http_client = make_client(settings).http_client
    assert isinstance(http_client, RebasedHttpClient)
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json"
    assert http_client.rebase(url) == url
