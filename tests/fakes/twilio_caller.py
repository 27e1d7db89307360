"""A caller as Twilio sees one: drives the hotline's voice webhooks exactly the way Twilio does.

Each step reads the TwiML just returned, takes the ``action``/``url``/``waitUrl`` of the verb in play, and POSTs
Twilio's form fields there, signed with ``RequestValidator``'s algorithm over that absolute URL. The request
itself goes to whatever ``http`` is — a FastAPI ``TestClient`` or an ``httpx.Client`` with a ``base_url`` — so
the public URL (what is signed) and the address reached (what a proxy forwards to) may differ, as in production.

    caller = TwilioCaller(client, auth_token=TOKEN, public_base_url="https://12345.example.gov.cn")
    caller.dial_in()            # the number's voice URL: greeting and menu
    caller.press("1")           # Digits to the menu's Gather action
    caller.say("小区门口燃气泄漏")  # SpeechResult to the speech Gather's action
    caller.dial_ends("completed")

``caller.twiml`` is the document in play (parsed XML), ``caller.history`` every request and its answer.
A ``<Redirect>`` reached before any verb that waits for the caller is followed, as Twilio does.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

WAITING_VERBS = ("Gather", "Enqueue", "Dial", "Record")


class HttpResponse(Protocol):
    status_code: int
    text: str


class Http(Protocol):
    def post(self, url: str, *, data: Mapping[str, str], headers: Mapping[str, str]) -> Any: ...


@dataclass(frozen=True)
class Twiml:
    """A TwiML document, parsed."""

    root: ET.Element

    @classmethod
    def parse(cls, text: str) -> Twiml:
        root = ET.fromstring(text)
        if root.tag != "Response":
            raise AssertionError(f"TwiML must have <Response> at its root, not <{root.tag}>")
        return cls(root)

    @property
    def verbs(self) -> list[ET.Element]:
        return list(self.root)

    @property
    def tags(self) -> list[str]:
        return [verb.tag for verb in self.root]

    def find(self, tag: str) -> ET.Element | None:
        """The first element ``tag`` anywhere in the document."""
        return next(self.root.iter(tag), None)

    def one(self, tag: str) -> ET.Element:
        found = list(self.root.iter(tag))
        if len(found) != 1:
            raise AssertionError(f"expected one <{tag}>, found {len(found)} in {self.tags}")
        return found[0]

    def says(self) -> list[str]:
        """Every sentence spoken, in order (inside a Gather too)."""
        return [say.text or "" for say in self.root.iter("Say")]

    def spoken(self) -> str:
        return "".join(self.says())


@dataclass(frozen=True)
class Exchange:
    url: str
    params: dict[str, str]
    status: int
    twiml: Twiml | None


@dataclass
class TwilioCaller:
    http: Http
    auth_token: str
    public_base_url: str
    from_: str = "+8613812345678"
    to: str = "+8657112345"
    account_sid: str = "AC" + "0" * 32
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    direction: str = "inbound"
    voice_path: str = "/channels/twilio/voice"
    status_path: str = "/channels/twilio/status"
    twiml: Twiml | None = None
    history: list[Exchange] = field(default_factory=list)

    # -- the wire -----------------------------------------------------------------------------------------------

    def absolute(self, path: str) -> str:
        return self.public_base_url.rstrip("/") + path

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        signature: str = RequestValidator(self.auth_token).compute_signature(url, dict(params))
        return signature

    def call_fields(self, status: str = "in-progress") -> dict[str, str]:
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": self.call_sid,
            "CallStatus": status, "Direction": self.direction, "From": self.from_, "To": self.to,
            "Caller": self.from_, "Called": self.to,
        }

    def post(self, url: str, params: Mapping[str, str], *, signature: str | None = "valid") -> Any:
        """POST ``params`` to the absolute ``url`` as Twilio would. ``signature``: "valid" (computed), a given
        string (forged), or None (unsigned). Returns the raw HTTP response."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1"}
        if signature == "valid":
            headers["X-Twilio-Signature"] = self.sign(url, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        response = self.http.post(target, data=dict(params), headers=headers)
        body = response.text
        twiml = Twiml.parse(body) if response.status_code == 200 and body.lstrip().startswith("<?xml") else None
        self.history.append(Exchange(url, dict(params), response.status_code, twiml))
        return response

    def step(self, url: str, params: Mapping[str, str]) -> Twiml:
        """POST and expect TwiML back; it becomes the document in play (after following a leading Redirect)."""
        response = self.post(url, params)
        if response.status_code != 200:
            raise AssertionError(f"{url} answered {response.status_code}: {response.text[:300]}")
        twiml = self.history[-1].twiml
        if twiml is None:
            raise AssertionError(f"{url} answered without TwiML: {response.text[:300]}")
        self.twiml = twiml
        redirect = self._reached_redirect(twiml)
        if redirect is not None:
            return self.step(redirect.text or "", self.call_fields())
        return twiml

    def replay(self) -> Any:
        """Send the last request again, byte for byte (Twilio retries a webhook that timed out)."""
        last = self.history[-1]
        return self.post(last.url, last.params)

    # -- what a caller does -------------------------------------------------------------------------------------

    def dial_in(self) -> Twiml:
        """The call arrives: Twilio fetches the number's voice URL."""
        return self.step(self.absolute(self.voice_path), self.call_fields("ringing"))

    def answer(self, url: str) -> Twiml:
        """An outbound call (``calls.create(url=…)``) is answered: Twilio fetches its URL."""
        return self.step(url, self.call_fields("in-progress"))

    def press(self, digits: str) -> Twiml:
        gather = self._current("Gather")
        if "dtmf" not in gather.get("input", "dtmf"):
            raise AssertionError(f"the Gather in play takes {gather.get('input')}, not keys")
        finished = "#" if digits.endswith("#") else ""
        return self.step(self._action(gather), {**self.call_fields(), "Digits": digits.rstrip("#"),
                                                "FinishedOnKey": finished})

    def say(self, text: str, confidence: float = 0.92) -> Twiml:
        gather = self._current("Gather")
        if "speech" not in gather.get("input", "dtmf"):
            raise AssertionError(f"the Gather in play takes {gather.get('input', 'dtmf')}, not speech")
        fields = {**self.call_fields(), "SpeechResult": text, "Confidence": f"{confidence:.8f}",
                  "Language": gather.get("language", "en-US")}
        return self.step(self._action(gather), fields)

    def stay_silent(self) -> Twiml:
        """Gather times out: its action with no input if actionOnEmptyResult, else the verbs after it."""
        gather = self._current("Gather")
        if gather.get("actionOnEmptyResult") == "true":
            return self.step(self._action(gather), self.call_fields())
        assert self.twiml is not None
        rest = self.twiml.verbs[self.twiml.verbs.index(gather) + 1 :]
        root = ET.Element("Response")
        root.extend(rest)
        self.twiml = Twiml(root)
        return self.twiml

    def wait_in_queue(self, seconds: int, position: int = 1, size: int = 1) -> Twiml:
        """Twilio fetches the Enqueue's waitUrl (again and again while the caller waits). A ``<Leave>`` takes the
        caller out of the queue: the Enqueue's action follows with ``QueueResult=leave``."""
        enqueue = self._current("Enqueue")
        fields = {
            **self.call_fields(), "QueueSid": "QU" + "0" * 32, "QueueTime": str(seconds),
            "QueuePosition": str(position), "AvgQueueTime": str(seconds), "CurrentQueueSize": str(size),
            "MaxQueueSize": "100",
        }
        response = self.post(enqueue.get("waitUrl", ""), fields)
        hold = self.history[-1].twiml
        if response.status_code != 200 or hold is None:
            raise AssertionError(f"waitUrl answered {response.status_code}: {response.text[:300]}")
        if hold.find("Leave") is not None:
            return self.leave_queue("leave", seconds)
        return hold

    def leave_queue(self, result: str, seconds: int = 0) -> Twiml:
        """The queue is over for this caller: bridged, hangup, leave, queue-full, error …"""
        enqueue = self._current("Enqueue")
        fields = {**self.call_fields(), "QueueResult": result, "QueueTime": str(seconds),
                  "QueueSid": "QU" + "0" * 32}
        return self.step(self._action(enqueue), fields)

    def dial_ends(self, status: str = "completed", duration: int = 60) -> Twiml:
        """The ``<Dial>`` is over: its action gets DialCallStatus."""
        dial = self._current("Dial")
        fields = {**self.call_fields(), "DialCallStatus": status, "DialCallSid": "CA" + uuid.uuid4().hex,
                  "DialCallDuration": str(duration if status == "completed" else 0)}
        return self.step(self._action(dial), fields)

    def leave_message(self, seconds: int = 15) -> Twiml:
        """Speak after the beep and press #: the Record's action, then its recordingStatusCallback."""
        record = self._current("Record")
        recording_sid = "RE" + uuid.uuid4().hex
        recording_url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"
        action_fields = {**self.call_fields(), "RecordingUrl": recording_url, "RecordingSid": recording_sid,
                         "RecordingDuration": str(seconds), "Digits": "#"}
        twiml = self.step(self._action(record), action_fields)
        callback = record.get("recordingStatusCallback")
        if callback:
            callback_fields = {
                "AccountSid": self.account_sid, "CallSid": self.call_sid, "RecordingSid": recording_sid,
                "RecordingUrl": recording_url, "RecordingStatus": "completed", "RecordingDuration": str(seconds),
                "RecordingChannels": "1", "RecordingSource": "RecordVerb",
            }
            response = self.post(callback, callback_fields)
            if response.status_code >= 300:
                raise AssertionError(f"recording callback answered {response.status_code}: {response.text[:300]}")
        return twiml

    def hang_up(self, status: str = "completed", duration: int = 30, status_url: str | None = None) -> Any:
        """The call is over: Twilio posts the final status to the status callback."""
        fields = {**self.call_fields(status), "CallDuration": str(duration), "Duration": str(max(1, duration // 60))}
        return self.post(status_url or self.absolute(self.status_path), fields)

    # -- reading the TwiML in play -------------------------------------------------------------------------------

    def _current(self, tag: str) -> ET.Element:
        if self.twiml is None:
            raise AssertionError("no TwiML in play yet")
        for verb in self.twiml.verbs:
            if verb.tag in WAITING_VERBS:
                if verb.tag != tag:
                    raise AssertionError(f"the call is at <{verb.tag}>, not <{tag}>: {self.twiml.tags}")
                return verb
        raise AssertionError(f"no <{tag}> in play: {self.twiml.tags}")

    def _action(self, verb: ET.Element) -> str:
        action = verb.get("action")
        if not action:
            raise AssertionError(f"<{verb.tag}> has no action URL")
        if not action.startswith(("http://", "https://")):
            raise AssertionError(f"<{verb.tag}> action {action!r} is relative; Twilio would sign another URL")
        if (verb.get("method") or "POST").upper() != "POST":
            raise AssertionError(f"<{verb.tag}> action is not POSTed")
        return action

    @staticmethod
    def _reached_redirect(twiml: Twiml) -> ET.Element | None:
        for verb in twiml.verbs:
            if verb.tag in WAITING_VERBS or verb.tag == "Hangup":
                return None
            if verb.tag == "Redirect":
                return verb
        return None
