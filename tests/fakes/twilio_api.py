"""A fake of Twilio's REST API (2010-04-01) on 127.0.0.1, for the real ``twilio.rest.Client``.

It serves what the hotline uses — Calls (create, fetch, update), Messages (create) and Conference Participants
(create) — checks HTTP basic auth (the account's auth token, or an API key and its secret), answers with Twilio's
JSON shapes and error bodies, honours ``I-Twilio-Idempotency-Token`` (the same token again returns the first
answer and creates nothing), and records every request with its headers and form.

Failures on demand: ``fail_next(n)`` answers the next n requests with an error before doing anything;
``lose_next_responses(n)`` does the work and then answers with an error, as when the response is lost on the way
back — the case idempotency tokens exist for.

``make run`` serves it for the demo city on 127.0.0.1:8010 with the demo account
(``python -m tests.fakes.twilio_api --port 8010``), where ``HOTLINE_TWILIO_API_BASE`` points in demo mode.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API = "/2010-04-01"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
#: the fake's own control route (not Twilio's): a simulated inbound call waiting in the queue
INBOUND_CONTROL = "/fake/inbound-calls"

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/Calls\.json$"), "create_call"),
    ("GET", re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/Calls/(?P<sid>CA\w+)\.json$"), "fetch_call"),
    ("POST", re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/Calls/(?P<sid>CA\w+)\.json$"), "update_call"),
    ("POST", re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/Messages\.json$"), "create_message"),
    (
        "POST",
        re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/Conferences/(?P<conference>[^/]+)/Participants\.json$"),
        "create_participant",
    ),
)


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code, "message": self.message, "status": self.status,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    username: str | None
    status: int

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None

    @property
    def idempotency_token(self) -> str | None:
        return self.header(IDEMPOTENCY_HEADER)

_RECORDING = re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/Recordings/(?P<sid>RE\w+)\.mp3$")


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _now() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True)


@dataclass
class FakeTwilioApi:
    account_sid: str
    auth_token: str
    api_keys: dict[str, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    conferences: dict[str, str] = field(default_factory=dict)  # friendly name -> CF sid
    recordings: dict[str, bytes] = field(default_factory=dict)  # RE sid -> the MP3 served at …/Recordings/RE….mp3
    port: int = 0  # 0: any free port

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self._lose: list[int] = []
        self._answers: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- control ------------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Twilio API is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @contextmanager
    def running(self) -> Iterator[FakeTwilioApi]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
            self._server = None

    def fail_next(self, times: int, status: int = 503) -> None:
        """The next ``times`` requests get ``status`` and change nothing."""
        with self._lock:
            self._fail.extend([status] * times)

    def lose_next_responses(self, times: int, status: int = 502) -> None:
        """The next ``times`` requests are carried out, but their answer is ``status`` (the response was lost)."""
        with self._lock:
            self._lose.extend([status] * times)

    def requests_to(self, resource: str) -> list[RecordedRequest]:
        """Recorded requests whose path ends with ``resource`` (e.g. "Calls.json")."""
        return [r for r in self.requests if r.path.endswith(resource)]

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def _recording(self, handler: BaseHTTPRequestHandler, path: str) -> bool:
        """``GET …/Recordings/RE….mp3``: the recording's audio, as Twilio serves it (to the account only)."""
        match = _RECORDING.match(path)
        if handler.command != "GET" or match is None:
            return False
        username, password = self._credentials(handler.headers.get("Authorization"))
        with self._lock:
            content = self.recordings.get(match.group("sid"))
            allowed = (username, password) == (self.account_sid, self.auth_token)
            self.requests.append(RecordedRequest(handler.command, path, dict(handler.headers.items()), {}, username,
                                                 200 if allowed and content is not None else 404))
        if not allowed or content is None or match.group("account") != self.account_sid:
            handler.send_response(401 if not allowed else 404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return True
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/mpeg")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
        return True

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if self._recording(handler, urlsplit(handler.path).path):
            return
        if handler.command == "POST" and urlsplit(handler.path).path == INBOUND_CONTROL:
            self._control_inbound(handler)
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8") if length else ""
        parts = urlsplit(handler.path)
        path = parts.path
        form = parse_qs(body, keep_blank_values=True)
        headers = dict(handler.headers.items())
        username, password = self._credentials(handler.headers.get("Authorization"))
        token = handler.headers.get(IDEMPOTENCY_HEADER)
        with self._lock:
            status, payload = self._answer(handler.command, path, form, username, password, token)
            self.requests.append(RecordedRequest(handler.command, path, headers, form, username, status))
        data = json.dumps(payload).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _control_inbound(self, handler: BaseHTTPRequestHandler) -> None:
        """The demo's simulator says a call came in and waits in the queue (Twilio knows its own calls; this fake
        learns them here), so that the desk's 接听下一个 can redirect it."""
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode("utf-8")).items()}
        ok = form.get("CallSid", "").startswith("CA")
        if ok:
            self.inbound_call(form["CallSid"], form.get("From", ""), form.get("To", ""))
        handler.send_response(204 if ok else 400)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    @staticmethod
    def _credentials(header: str | None) -> tuple[str | None, str | None]:
        if not header or not header.startswith("Basic "):
            return None, None
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        return user, password

    def _answer(
        self, method: str, path: str, form: dict[str, list[str]], username: str | None, password: str | None,
        token: str | None,
    ) -> tuple[int, dict[str, Any]]:
        if self._fail:
            status = self._fail.pop(0)
            return status, TwilioError(status, 20000 + status, "Service unavailable").body()
        authorized = (username == self.account_sid and password == self.auth_token) or (
            username in self.api_keys and password == self.api_keys[username]
        )
        if not authorized:
            return 401, TwilioError(401, 20003, "Authenticate").body()
        route = next(
            ((name, m) for verb, pattern, name in _ROUTES if verb == method and (m := pattern.match(path))), None
        )
        if route is None or route[1].group("account") != self.account_sid:
            return 404, TwilioError(404, 20404, f"The requested resource {path} was not found").body()
        key = (token or "", method, path)
        if token and key in self._answers:
            return self._answers[key]
        values = {name: vals[0] for name, vals in form.items()}
        try:
            status, payload = getattr(self, f"_{route[0]}")(route[1], values)
        except TwilioError as error:
            return error.status, error.body()
        if token:
            self._answers[key] = (status, payload)
        if self._lose:
            lost = self._lose.pop(0)
            return lost, TwilioError(lost, 20000 + lost, "Bad gateway").body()
        return status, payload

    # -- resources ----------------------------------------------------------------------------------------------

    def _base(self, sid: str, uri: str) -> dict[str, Any]:
        now = _now()
        return {
            "sid": sid, "account_sid": self.account_sid, "date_created": now, "date_updated": now,
            "api_version": "2010-04-01", "uri": uri,
        }

    def _create_call(self, m: re.Match[str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not form.get("To"):
            raise TwilioError(400, 21201, "No 'To' number is specified")
        if not form.get("From"):
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            raise TwilioError(400, 21205, "Url parameter is required")
        sid = _sid("CA")
        call = {
            **self._base(sid, f"{API}/Accounts/{self.account_sid}/Calls/{sid}.json"),
            "to": form["To"], "to_formatted": form["To"], "from": form["From"], "from_formatted": form["From"],
            "status": "queued", "direction": "outbound-api", "parent_call_sid": None, "phone_number_sid": None,
            "start_time": None, "end_time": None, "duration": None, "price": None, "price_unit": "USD",
            "answered_by": None, "forwarded_from": None, "caller_name": None, "group_sid": None, "queue_time": "0",
            "trunk_sid": None, "subresource_uris": {},
            "url": form.get("Url"), "status_callback": form.get("StatusCallback"), "form": form,
        }
        self.calls[sid] = call
        return 201, self._public(call)

    def _fetch_call(self, m: re.Match[str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        call = self.calls.get(m.group("sid"))
        if call is None:
            raise TwilioError(404, 20404, "The requested resource was not found")
        return 200, self._public(call)

    def inbound_call(self, sid: str, from_: str, to: str, *, queue: str | None = "hotline",
                     status: str = "in-progress") -> None:
        """A call that came in to the hotline's number (and waits in ``queue``), as Twilio would know it."""
        with self._lock:
            self.calls[sid] = {
                **self._base(sid, f"{API}/Accounts/{self.account_sid}/Calls/{sid}.json"),
                "to": to, "from": from_, "status": status, "direction": "inbound", "queue": queue, "redirects": [],
            }

    def _update_call(self, m: re.Match[str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        sid = m.group("sid")
        call = self.calls.setdefault(sid, {
            **self._base(sid, f"{API}/Accounts/{self.account_sid}/Calls/{sid}.json"),
            "to": None, "from": None, "status": "in-progress", "direction": "inbound",
        })
        if call["status"] in ("completed", "canceled", "failed", "busy", "no-answer") and (
                form.get("Url") or form.get("Twiml")):
            raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
        if form.get("Url") or form.get("Twiml"):
            # redirected: out of its queue (Twilio posts the Enqueue action with QueueResult=redirected)
            call.setdefault("redirects", []).append({"url": form.get("Url"), "twiml": form.get("Twiml")})
            call["queue"] = None
        if form.get("Twiml"):
            call["twiml"] = form["Twiml"]
        if form.get("Url"):
            call["url"] = form["Url"]
        if form.get("Status"):
            call["status"] = form["Status"]
        call["date_updated"] = _now()
        return 200, self._public(call)

    def _create_message(self, m: re.Match[str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not form.get("To"):
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if not (form.get("Body") or form.get("MediaUrl")):
            raise TwilioError(400, 21602, "Message body is required.")
        sid = _sid("SM")
        message = {
            **self._base(sid, f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json"),
            "to": form["To"], "from": form.get("From"), "body": form.get("Body", ""), "status": "queued",
            "direction": "outbound-api", "num_segments": "1", "num_media": "0", "date_sent": None, "price": None,
            "price_unit": "USD", "error_code": None, "error_message": None,
            "messaging_service_sid": form.get("MessagingServiceSid"), "subresource_uris": {},
        }
        self.messages[sid] = message
        return 201, message

    def _create_participant(self, m: re.Match[str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not form.get("From"):
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if not form.get("To"):
            raise TwilioError(400, 21201, "No 'To' number is specified")
        name = unquote(m.group("conference"))
        conference = name if name.startswith("CF") else self.conferences.setdefault(name, _sid("CF"))
        call_sid = _sid("CA")
        now = _now()
        participant = {
            "account_sid": self.account_sid, "call_sid": call_sid, "conference_sid": conference,
            "label": form.get("Label"), "call_sid_to_coach": None, "coaching": False, "date_created": now,
            "date_updated": now, "end_conference_on_exit": form.get("EndConferenceOnExit") == "true",
            "start_conference_on_enter": form.get("StartConferenceOnEnter", "true") == "true", "muted": False,
            "hold": False, "status": "queued", "queued_timeout": None,
            "uri": f"{API}/Accounts/{self.account_sid}/Conferences/{conference}/Participants/{call_sid}.json",
            "to": form["To"], "from": form["From"],
        }
        self.participants[call_sid] = participant
        return 201, participant

    @staticmethod
    def _public(call: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in call.items()
                if k not in ("url", "status_callback", "form", "queue", "redirects", "twiml")}


def main() -> None:
    """Serve the fake for the demo city until interrupted."""
    parser = argparse.ArgumentParser(description="a fake Twilio REST API for the demo city")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="demo-twilio-auth-token")
    args = parser.parse_args()
    demo_key = {"SK" + "0" * 32: "demo-twilio-api-secret"}  # the demo's browser-phone key (channels.phone.settings)
    fake = FakeTwilioApi(args.account_sid, args.auth_token, api_keys=demo_key, port=args.port)
    with fake.running():
        print(f"fake Twilio REST API on {fake.base_url} (account {args.account_sid})", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
