"""``hotline phone simulate``: a call as Twilio would make it, against a running server (the demo, a staging
city), so a newcomer sees a call arrive: the IVR's TwiML step by step, then the ticket and the SMS it causes.

It signs every request like Twilio (``X-Twilio-Signature`` over the public base URL plus the path, with the
configured auth token), follows the ``action`` of each ``<Gather>`` it is given, keys 1 (describe a request),
says the text; a caller put in the queue stays there (the desk's 来电排队 shows the call; the demo's fake Twilio
is told of it so 接听下一个 can put it through), otherwise the call's ``completed`` status is posted.
``--hang-up-in-queue`` leaves the queue instead (a missed call to call back), then completes; ``--key`` picks
another menu key (``0`` an agent, ``9`` the emergency menu).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import httpx
from defusedxml import ElementTree

from channels.phone.numbers import e164
from channels.phone.settings import PhoneSettings
from channels.phone.signature import SIGNATURE_HEADER, TwilioSignature
from channels.phone.twiml import Paths

WAITING = ("Gather", "Enqueue", "Dial", "Record")
INBOUND_CONTROL = "/fake/inbound-calls"  # the demo fake's (tests/fakes/twilio_api.py) own route, not Twilio's


class CallFailed(RuntimeError):
    """The server refused a step of the simulated call (or never asked for a menu key)."""


@dataclass
class SimulatedCall:
    settings: PhoneSettings
    caller: str
    http: httpx.Client
    say_line: Callable[[str], None] = print
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)

    def fields(self, status: str = "in-progress") -> dict[str, str]:
        return {"AccountSid": self.settings.twilio_account_sid, "ApiVersion": "2010-04-01", "CallSid": self.call_sid,
                "CallStatus": status, "Direction": "inbound", "From": self.caller, "To": self.settings.caller_id,
                "Caller": self.caller, "Called": self.settings.caller_id}

    def post(self, url: str, params: dict[str, str]) -> Element | None:
        signature = TwilioSignature(self.settings.auth_token, self.settings.public_base_url).sign(url, params)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.http.post(target, data=params, headers={SIGNATURE_HEADER: signature})
        if response.status_code >= 300:
            raise CallFailed(f"{target} answered {response.status_code}: {response.text[:200]}")
        self.say_line(f"> POST {target} → {response.status_code}")
        if not response.text.strip():
            return None
        root: Element = ElementTree.fromstring(response.text)
        for say in root.iter("Say"):
            self.say_line(f"  «{say.text or ''}»")
        self.say_line("  " + " ".join(verb.tag for verb in root))
        return root

    @staticmethod
    def waiting(root: Element | None) -> Element | None:
        return next((verb for verb in (() if root is None else root) if verb.tag in WAITING), None)

    def wait_in_queue(self) -> None:
        """The caller stays on the line in the queue (the desk's 来电排队 shows the call). Against the demo's fake
        Twilio the call is made known to it, so that 接听下一个 can put it through."""
        self.say_line("  （来电人在队列中等候话务员接听）")
        if self.settings.demo and self.settings.twilio_api_base:
            try:
                httpx.post(self.settings.twilio_api_base + INBOUND_CONTROL, timeout=5.0,
                           data={"CallSid": self.call_sid, "From": self.caller, "To": self.settings.caller_id})
            except httpx.HTTPError as exc:
                self.say_line(f"  （本地模拟 Twilio 未响应：{exc}）")

    def run(self, key: str, words: str, hang_up_in_queue: bool) -> None:
        root = self.post(self.settings.public_base_url + Paths.VOICE, self.fields("ringing"))
        gather = self.waiting(root)
        if gather is None or gather.tag != "Gather":
            raise CallFailed("the voice URL did not ask for a menu key")
        root = self.post(gather.get("action", ""), {**self.fields(), "Digits": key})
        verb = self.waiting(root)
        if verb is not None and verb.tag == "Gather" and "speech" in verb.get("input", ""):
            root = self.post(verb.get("action", ""), {**self.fields(), "SpeechResult": words,
                                                      "Confidence": "0.93", "Language": verb.get("language", "")})
            verb = self.waiting(root)
        if verb is not None and verb.tag == "Enqueue":
            if not hang_up_in_queue:
                self.wait_in_queue()
                return
            self.post(verb.get("action", ""), {**self.fields(), "QueueResult": "hangup", "QueueTime": "40"})
        self.post(self.settings.public_base_url + Paths.STATUS, {**self.fields("completed"), "CallDuration": "60"})


def cmd_simulate(args: argparse.Namespace) -> int:
    from hotline.settings import load_settings

    settings = load_settings().phone
    if not settings.phone_enabled:
        print("hotline: the phone channel is off (HOTLINE_PHONE_ENABLED)", file=sys.stderr)
        return 2
    caller = e164(args.from_)
    if caller is None:
        print(f"hotline: --from {args.from_!r} is not a phone number (13812345678)", file=sys.stderr)
        return 2
    base = args.server or settings.public_base_url
    with httpx.Client(base_url=base, timeout=15.0) as http:
        try:
            SimulatedCall(settings, caller, http).run(args.key, args.say, args.hang_up_in_queue)
        except (CallFailed, httpx.HTTPError) as exc:
            print(f"hotline: {exc}", file=sys.stderr)
            return 2
    return 0


def add_commands(sub: Any) -> None:
    phone = sub.add_parser("phone", help="the phone channel (Twilio)")
    phone_sub = phone.add_subparsers(dest="phone_command", required=True)
    p = phone_sub.add_parser("simulate", help="make a signed call to the running server as Twilio would")
    p.add_argument("--from", dest="from_", required=True, help="the caller's number, e.g. 13812345678")
    p.add_argument("--say", default="小区门口的路灯坏了一个星期了", help="what the caller says")
    p.add_argument("--key", default="1", choices=["0", "1", "2", "9"], help="the menu key (1: describe)")
    p.add_argument("--hang-up-in-queue", action="store_true", help="hang up while waiting (a missed call)")
    p.add_argument("--server", help="where to send the requests (default HOTLINE_PUBLIC_BASE_URL)")
    p.set_defaults(func=cmd_simulate)
