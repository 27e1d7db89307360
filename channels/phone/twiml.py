"""The IVR as TwiML: one function per step, each returning a ``VoiceResponse``.

Every ``action``/``url``/callback is an absolute URL, the public base URL plus a path of ``Paths``: Twilio signs
its next request against exactly that URL, and ``channels.phone.signature`` checks it against the same base.
Speech is ``<Say voice="Polly.Zhiyu" language="cmn-CN">`` (per-city settings), recognition ``cmn-Hans-CN``.

The call flow (12345 answers 7×24):

    voice ─ menu ─┬─ 1 describe (speech) ─┬─ emergency detected ─> transfer (Dial)
                  │                       └─ queue (Enqueue, hold messages) ─┬─ bridged to an agent
                  │                                                          └─ timeout / full / night ─> voicemail
                  ├─ 2 status (ticket number digits) ─> status said ─ 0 queue
                  ├─ 9 emergency menu ─> transfer (Dial 110/119/120/122)
                  └─ 0 queue
    survey call (回访): solved? 1/2 ─> satisfaction 1/2/3 ─> thanks
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.phone.prompts import EMERGENCY_LINES, PhonePrompts
from channels.phone.settings import PhoneSettings


class Paths:
    """The webhook paths, relative to the public base URL. ``VOICE`` and ``STATUS`` are configured on the number."""

    VOICE: Final = "/channels/twilio/voice"
    STATUS: Final = "/channels/twilio/status"
    MENU: Final = "/channels/twilio/voice/menu"
    DESCRIBE: Final = "/channels/twilio/voice/describe"
    EMERGENCY: Final = "/channels/twilio/voice/emergency"
    TRANSFER_DONE: Final = "/channels/twilio/voice/transfer-done"
    STATUS_QUERY: Final = "/channels/twilio/voice/ticket-status"
    STATUS_MORE: Final = "/channels/twilio/voice/ticket-status/more"
    HOLD: Final = "/channels/twilio/voice/hold"
    QUEUE_RESULT: Final = "/channels/twilio/voice/queue-result"
    RECORDED: Final = "/channels/twilio/voice/recorded"
    RECORDING: Final = "/channels/twilio/recording"
    CONFERENCE: Final = "/channels/twilio/conference"
    JOIN_CONFERENCE: Final = "/channels/twilio/voice/conference"
    SURVEY: Final = "/channels/twilio/survey"
    SURVEY_SOLVED: Final = "/channels/twilio/survey/solved"
    SURVEY_SATISFACTION: Final = "/channels/twilio/survey/satisfaction"


# Menu keys of the emergency sub-menu, in the order the prompt names them.
EMERGENCY_KEYS: Final = dict(zip("1234", EMERGENCY_LINES, strict=True))
TICKET_NUMBER_DIGITS: Final = 14
QUEUE_NAME: Final = "hotline"
HOLD_PAUSE_SECONDS: Final = 8
VOICEMAIL_MAX_SECONDS: Final = 180


def spoken_digits(number: str) -> str:
    """"20261122000123" -> "2 0 2 6 …": the voice reads a ticket number digit by digit, not as an amount."""
    return " ".join(number)


@dataclass(frozen=True)
class Ivr:
    """Builds each step's TwiML for one city's settings."""

    base_url: str
    prompts: PhonePrompts
    voice: str = "Polly.Zhiyu"
    say_language: str = "cmn-CN"
    speech_language: str = "cmn-Hans-CN"
    queue_timeout_seconds: int = 180

    @classmethod
    def from_settings(cls, settings: PhoneSettings) -> Ivr:
        return cls(
            base_url=settings.public_base_url,
            prompts=settings.phone_prompts,
            voice=settings.phone_voice,
            say_language=settings.phone_say_language,
            speech_language=settings.phone_speech_language,
            queue_timeout_seconds=settings.queue_timeout_seconds,
        )

    def url(self, path: str, **query: str | int) -> str:
        """The absolute URL Twilio requests (and signs) for ``path``."""
        if not self.base_url:
            raise ValueError("the public base URL is not configured (HOTLINE_PUBLIC_BASE_URL)")
        tail = f"?{urlencode(query)}" if query else ""
        return f"{self.base_url.rstrip('/')}{path}{tail}"

    def _say(self, target: VoiceResponse | Gather, text: str) -> None:
        target.say(text, voice=self.voice, language=self.say_language)

    def _menu_gather(self, response: VoiceResponse, tries: int = 0) -> None:
        action = self.url(Paths.MENU, tries=tries) if tries else self.url(Paths.MENU)
        gather = response.gather(
            input="dtmf", num_digits=1, timeout=6, action=action, method="POST",
            action_on_empty_result=True,
        )
        self._say(gather, self.prompts.menu)

    # -- inbound call ---------------------------------------------------------------------------------------

    def welcome(self) -> VoiceResponse:
        """The greeting and the main menu: 1 describe, 2 status, 9 emergency, 0 an agent."""
        response = VoiceResponse()
        self._say(response, self.prompts.greeting)
        self._menu_gather(response)
        return response

    def menu_again(self, *, no_input: bool, tries: int) -> VoiceResponse:
        """The menu once more after no key or a wrong one; ``tries`` counts the failed attempts so far."""
        response = VoiceResponse()
        self._say(response, self.prompts.menu_no_input if no_input else self.prompts.menu_invalid)
        self._menu_gather(response, tries)
        return response

    def describe(self) -> VoiceResponse:
        """Ask the caller to say what the request is; the transcript comes back as SpeechResult."""
        response = VoiceResponse()
        gather = response.gather(
            input="speech", language=self.speech_language, speech_timeout="auto", timeout=8,
            action=self.url(Paths.DESCRIBE), method="POST", action_on_empty_result=True,
        )
        self._say(gather, self.prompts.describe)
        return response

    def emergency_menu(self, tries: int = 0) -> VoiceResponse:
        """Which emergency line: 1 110, 2 119, 3 120, 4 122."""
        response = VoiceResponse()
        if tries:
            self._say(response, self.prompts.menu_invalid)
        action = self.url(Paths.EMERGENCY, tries=tries) if tries else self.url(Paths.EMERGENCY)
        gather = response.gather(
            input="dtmf", num_digits=1, timeout=6, action=action, method="POST", action_on_empty_result=True,
        )
        self._say(gather, self.prompts.emergency_menu)
        return response

    def transfer(self, line: str, number: str, *, detected: bool = False) -> VoiceResponse:
        """One-click transfer: the caller is connected to the emergency line; if that fails, to an agent."""
        response = VoiceResponse()
        if detected:
            self._say(response, self.prompts.emergency_detected)
        self._say(response, self.prompts.transfer.format(line=self._line_name(line)))
        dial = response.dial(action=self.url(Paths.TRANSFER_DONE, line=line), method="POST", timeout=30)
        dial.number(number)
        return response

    def three_party(self, line: str, conference: str) -> VoiceResponse:
        """The caller's leg of a three-party call: caller, agent and the emergency line (added by the REST API)."""
        response = VoiceResponse()
        self._say(response, self.prompts.three_party.format(line=self._line_name(line)))
        dial = response.dial(action=self.url(Paths.TRANSFER_DONE, line=line), method="POST")
        dial.conference(
            conference,
            start_conference_on_enter=True,
            end_conference_on_exit=False,
            beep=False,
            status_callback=self.url(Paths.CONFERENCE),
            status_callback_method="POST",
            status_callback_event="start end join leave",
        )
        return response

    def status_prompt(self) -> VoiceResponse:
        """Ask for the ticket number (14 digits, ended by #)."""
        response = VoiceResponse()
        gather = response.gather(
            input="dtmf", num_digits=TICKET_NUMBER_DIGITS, finish_on_key="#", timeout=10,
            action=self.url(Paths.STATUS_QUERY), method="POST", action_on_empty_result=True,
        )
        self._say(gather, self.prompts.status_prompt)
        return response

    def status_answer(self, number: str, status: str | None) -> VoiceResponse:
        """Say the ticket's status (None: not found, or not asked from the number that filed it)."""
        response = VoiceResponse()
        if status is None:
            self._say(response, self.prompts.status_not_found)
        else:
            self._say(response, self.prompts.status_answer.format(number=spoken_digits(number), status=status))
        gather = response.gather(
            input="dtmf", num_digits=1, timeout=5, action=self.url(Paths.STATUS_MORE), method="POST",
        )
        self._say(gather, self.prompts.status_more)
        self._say(response, self.prompts.goodbye)
        response.hangup()
        return response

    def queue(self, intro: str | None = None) -> VoiceResponse:
        """Queue the caller for the next free agent (after ``intro``, if any); hold messages come from ``HOLD``."""
        response = VoiceResponse()
        if intro:
            self._say(response, intro)
        response.enqueue(
            QUEUE_NAME, wait_url=self.url(Paths.HOLD), wait_url_method="POST",
            action=self.url(Paths.QUEUE_RESULT), method="POST",
        )
        return response

    def hold(self, queue_seconds: int, position: int | None) -> VoiceResponse:
        """The waitUrl's answer, fetched again and again while the caller waits; after the timeout: leave."""
        response = VoiceResponse()
        if queue_seconds >= self.queue_timeout_seconds:
            response.leave()
            return response
        messages = self.prompts.hold
        message = messages[(queue_seconds // HOLD_PAUSE_SECONDS) % len(messages)]
        self._say(response, message)
        if position is not None and position > 0:
            self._say(response, self.prompts.hold_position.format(position=position))
        response.pause(length=HOLD_PAUSE_SECONDS)
        return response

    def voicemail(self, *, night: bool = False) -> VoiceResponse:
        """Nobody is free: record a message; the recording arrives at ``RECORDING`` once it is stored."""
        response = VoiceResponse()
        self._say(response, self.prompts.voicemail_night if night else self.prompts.voicemail)
        response.record(
            action=self.url(Paths.RECORDED), method="POST", max_length=VOICEMAIL_MAX_SECONDS, timeout=8,
            finish_on_key="#", play_beep=True,
            recording_status_callback=self.url(Paths.RECORDING), recording_status_callback_method="POST",
            recording_status_callback_event="completed",
        )
        self._say(response, self.prompts.voicemail_empty)
        response.hangup()
        return response

    def voicemail_done(self, *, recorded: bool) -> VoiceResponse:
        response = VoiceResponse()
        self._say(response, self.prompts.voicemail_thanks if recorded else self.prompts.voicemail_empty)
        response.hangup()
        return response

    def goodbye(self) -> VoiceResponse:
        response = VoiceResponse()
        self._say(response, self.prompts.goodbye)
        response.hangup()
        return response

    def too_many_calls(self) -> VoiceResponse:
        """A number calling more often than the limit: told so, and the call ends (nothing is stored)."""
        response = VoiceResponse()
        self._say(response, self.prompts.too_many_calls)
        response.hangup()
        return response

    # -- survey call (回访) ----------------------------------------------------------------------------------

    def survey_url(self, survey: str, number: str) -> str:
        """The ``url`` of ``calls.create`` for one survey of ticket ``number``: the first question is asked when
        the citizen answers. ``survey`` is the worker's reference, handed back with the answers."""
        return self.url(Paths.SURVEY, survey=survey, number=number)

    def survey_solved(self, survey: str, number: str, *, again: bool = False) -> VoiceResponse:
        """Solved? 1 yes, 2 no (keyed or said). Asked twice at most."""
        response = VoiceResponse()
        if again:
            self._say(response, self.prompts.survey_not_heard)
        else:
            self._say(response, self.prompts.survey_intro.format(number=spoken_digits(number)))
        gather = self._survey_gather(response, self.url(Paths.SURVEY_SOLVED, survey=survey, again=int(again)),
                                     hints="解决了,已经解决,没有解决,没解决")
        self._say(gather, self.prompts.survey_solved)
        return response

    def survey_satisfaction(self, survey: str, solved: bool, *, again: bool = False) -> VoiceResponse:
        """Satisfaction: 1 满意, 2 基本满意, 3 不满意 (keyed or said). Asked twice at most."""
        response = VoiceResponse()
        if again:
            self._say(response, self.prompts.survey_not_heard)
        action = self.url(Paths.SURVEY_SATISFACTION, survey=survey, solved=int(solved), again=int(again))
        gather = self._survey_gather(response, action, hints="满意,基本满意,不满意")
        self._say(gather, self.prompts.survey_satisfaction)
        return response

    def survey_done(self, *, answered: bool) -> VoiceResponse:
        response = VoiceResponse()
        self._say(response, self.prompts.survey_thanks if answered else self.prompts.survey_no_answer)
        response.hangup()
        return response

    def _survey_gather(self, response: VoiceResponse, action: str, *, hints: str) -> Gather:
        gather: Gather = response.gather(
            input="dtmf speech", num_digits=1, timeout=6, speech_timeout="auto", language=self.speech_language,
            hints=hints, action=action, method="POST", action_on_empty_result=True,
        )
        return gather

    def _line_name(self, line: str) -> str:
        return self.prompts.emergency_line_names[line]
