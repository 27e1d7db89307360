"""Open311 GeoReport v2, the pure protocol: parsing and validating what clients send, rendering what we answer.

No HTTP and no database here (``routes.py`` has the former; the functions it is given, the latter). Every answer
renders in ``json`` and ``xml`` (the spec requires XML; UTF-8 with its declaration); element names are the spec's:

- discovery: ``<discovery>`` with changeset, contact, key_service, ``<endpoints><endpoint>`` (specification, url,
  changeset, type, ``<formats><format>``); JSON: one object.
- services: ``<services><service>`` (service_code, service_name, description, metadata, type, keywords, group);
  JSON: an array.
- service definition: ``<service_definition>`` with service_code and ``<attributes><attribute>`` (variable, code,
  datatype, required, datatype_description, order, description, ``<values><value><key/><name/>``); JSON: one object.
- service requests: ``<service_requests><request>`` (service_request_id, status, status_notes, service_name,
  service_code, description, agency_responsible, service_notice, requested_datetime, updated_datetime,
  expected_datetime, address, address_id, zipcode, lat, long, media_url); JSON: an array.
- a POST's receipt: ``<service_requests><request>`` with service_request_id or token, service_notice, account_id.
- a token: ``<service_requests><request>`` with service_request_id (empty until the request exists) and token.
- errors: ``<errors><error><code/><description/>``; JSON: an array of ``{"code", "description"}``.

Requests: POST ``requests`` is form-encoded (``application/x-www-form-urlencoded``, UTF-8) with service_code and a
location (lat and long, or address_string, or address_id), description of at most 4,000 characters, media_url, the
citizen's first_name/last_name/email/phone/device_id/account_id and ``attribute[CODE]`` (``attribute[CODE][]`` for
a multivaluelist) checked against the service definition. GET ``requests`` takes service_request_id (a comma list
that overrides every other filter), service_code (comma list), start_date/end_date (ISO 8601 with a time zone, at
most 90 days apart; by default the last 90 days) and status (open, closed; comma list). Answers hold at most 1,000
requests.

What this module never renders: the citizen's name, phone, email, device or account (they are input only), and
nothing that the functions behind the router did not choose to make public.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from channels.xmlsafe import xml_safe

Format = Literal["json", "xml"]
Status = Literal["open", "closed"]
ServiceType = Literal["realtime", "batch", "blackbox"]
Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]

FORMATS: tuple[Format, ...] = ("json", "xml")
MEDIA_TYPES: Mapping[Format, str] = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_DESCRIPTION_CHARS = 4000
MAX_QUERY_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
MAX_FORM_FIELDS = 100
MAX_IDS = 100
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{1,63}$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{3,30}$")
_SINGLE_FIELDS = ("api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
                  "email", "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url")
_FIELD_LIMITS = {"api_key": 200, "jurisdiction_id": 100, "service_code": 64, "lat": 40, "long": 40,
                 "address_string": 500, "address_id": 100, "email": 254, "device_id": 100, "account_id": 100,
                 "first_name": 100, "last_name": 100, "phone": 30, "media_url": 2000}


@dataclass(frozen=True)
class Open311Error:
    code: int
    description: str


class Open311Failure(Exception):
    """A request the spec says to refuse: the HTTP status and one or more errors with that code."""

    def __init__(self, status: int, *descriptions: str, retry_after: int | None = None) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.errors = [Open311Error(status, d) for d in descriptions]
        self.retry_after = retry_after

    @classmethod
    def too_many(cls, wait: int) -> Open311Failure:
        """A client over its request limit: 429 in the spec's error list, with ``Retry-After``."""
        return cls(429, f"请求过于频繁，请 {wait} 秒后再试 (too many requests; retry in {wait} s)", retry_after=wait)


# --- what we answer -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    url: str
    changeset: datetime
    type: Literal["production", "test"] = "production"
    specification: str = SPECIFICATION
    formats: tuple[str, ...] = ("text/xml", "application/json")


@dataclass(frozen=True)
class Discovery:
    changeset: datetime
    contact: str
    key_service: str
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class Service:
    service_code: str
    service_name: str
    description: str = ""
    metadata: bool = False
    type: ServiceType = "batch"
    keywords: tuple[str, ...] = ()
    group: str = ""


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: Datatype
    description: str
    required: bool = False
    variable: bool = True
    datatype_description: str = ""
    order: int = 1
    values: tuple[AttributeValue, ...] = ()


@dataclass(frozen=True)
class ServiceDefinition:
    service_code: str
    attributes: tuple[Attribute, ...] = ()


@dataclass(frozen=True)
class ServiceRequest:
    """A request as the public may see it (no citizen data: the functions behind the router choose what goes in)."""

    service_request_id: str
    status: Status
    service_code: str
    service_name: str
    requested_datetime: datetime
    updated_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    status_notes: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


@dataclass(frozen=True)
class Receipt:
    """The answer to a POST: the request id (realtime) or a token to ask for it later (batch)."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None

    def __post_init__(self) -> None:
        if (self.service_request_id is None) == (self.token is None):
            raise ValueError("a receipt has either a service_request_id or a token")


@dataclass(frozen=True)
class TokenStatus:
    token: str
    service_request_id: str | None  # None while the request is not made yet


# --- what clients send ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewServiceRequest:
    """A validated POST ``requests``; the citizen's fields go to the intake and never come back out."""

    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    description: str = ""
    media_url: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    jurisdiction_id: str | None = None
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestQuery:
    """A validated GET ``requests``. With ``service_request_ids`` the other filters do not apply (and are None)."""

    service_request_ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[Status, ...] = ()
    limit: int = MAX_RESULTS


def parse_form(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    """The fields of a form-encoded UTF-8 body, in order; Open311Failure(400) for anything else."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise Open311Failure(400, f"Content-Type must be {FORM_CONTENT_TYPE}")
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in (content_type or "").split(";")[1:]
                    if p.strip().lower().startswith("charset=")), "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise Open311Failure(400, "the form must be encoded in UTF-8")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise Open311Failure(400, "the form is not valid UTF-8") from None
    except ValueError:
        raise Open311Failure(400, f"the form is malformed or has more than {MAX_FORM_FIELDS} fields") from None
    return pairs


def parse_query_string(query: bytes) -> list[tuple[str, str]]:
    """The parameters of a GET query string; Open311Failure(400) when it is not UTF-8 or not a query."""
    try:
        text = query.decode("ascii")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                         max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise Open311Failure(400, "the query string is not valid UTF-8") from None
    except ValueError:
        raise Open311Failure(400, f"the query string has more than {MAX_FORM_FIELDS} parameters") from None


def single_values(pairs: Sequence[tuple[str, str]], names: Sequence[str]) -> dict[str, str]:
    """The named fields, stripped, empty ones left out; Open311Failure(400) for a field given twice."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in names:
            continue
        if name in values:
            raise Open311Failure(400, f"{name} was given more than once")
        if _CONTROL.search(value):
            raise Open311Failure(400, f"{name} contains control characters")
        value = value.strip()
        if value:
            values[name] = value
    return values


def parse_new_request(pairs: Sequence[tuple[str, str]], definition: ServiceDefinition) -> NewServiceRequest:
    """Validate a POST for the service ``definition`` describes; Open311Failure(400) listing every problem."""
    fields = single_values(pairs, _SINGLE_FIELDS)
    problems = [f"{name} is longer than {limit} characters" for name, limit in _FIELD_LIMITS.items()
                if len(fields.get(name, "")) > limit]
    description = fields.get("description", "")
    if len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
    lat, long = _coordinates(fields, problems)
    located = any(name in fields for name in ("lat", "long", "address_string", "address_id"))
    if not located:
        problems.append("a location is required: lat and long, address_string or address_id")
    media_url = fields.get("media_url")
    if media_url is not None and not _is_http_url(media_url):
        problems.append("media_url must be an http or https URL")
    if "email" in fields and not _EMAIL.match(fields["email"]):
        problems.append("email is not an email address")
    if "phone" in fields and not _PHONE.match(fields["phone"]):
        problems.append("phone is not a phone number")
    attributes = _attributes(pairs, definition, problems)
    if problems:
        raise Open311Failure(400, *problems)
    return NewServiceRequest(
        service_code=definition.service_code, lat=lat, long=long, address_string=fields.get("address_string"),
        address_id=fields.get("address_id"), description=description, media_url=media_url,
        first_name=fields.get("first_name"), last_name=fields.get("last_name"), email=fields.get("email"),
        phone=fields.get("phone"), device_id=fields.get("device_id"), account_id=fields.get("account_id"),
        jurisdiction_id=fields.get("jurisdiction_id"), attributes=attributes,
    )


def _coordinates(fields: Mapping[str, str], problems: list[str]) -> tuple[float | None, float | None]:
    if "lat" not in fields and "long" not in fields:
        return None, None
    if "lat" not in fields or "long" not in fields:
        problems.append("lat and long must be given together")
        return None, None
    try:
        lat, long = float(fields["lat"]), float(fields["long"])
    except ValueError:
        problems.append("lat and long must be decimal degrees (WGS84)")
        return None, None
    if not (math.isfinite(lat) and math.isfinite(long) and -90 <= lat <= 90 and -180 <= long <= 180):
        problems.append("lat must be within -90..90 and long within -180..180")
        return None, None
    return lat, long


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in value)


def _attributes(pairs: Sequence[tuple[str, str]], definition: ServiceDefinition,
                problems: list[str]) -> dict[str, tuple[str, ...]]:
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        match = _ATTRIBUTE.match(name)
        if match is None:
            continue
        if _CONTROL.search(value.replace("\n", "")):
            problems.append(f"{name} contains control characters")
            continue
        if value.strip():
            given.setdefault(match.group(1), []).append(value.strip())
    known = {a.code: a for a in definition.attributes if a.variable}
    for code in sorted(set(given) - set(known)):
        problems.append(f"attribute {code} is not part of service {definition.service_code}")
    result: dict[str, tuple[str, ...]] = {}
    for code, attribute in known.items():
        values = given.get(code, [])
        if not values:
            if attribute.required:
                problems.append(f"attribute {code} is required")
            continue
        problem = _attribute_problem(attribute, values)
        if problem:
            problems.append(f"attribute {code} {problem}")
        else:
            result[code] = tuple(values)
    return result


def _attribute_problem(attribute: Attribute, values: list[str]) -> str | None:
    keys = {v.key for v in attribute.values}
    if attribute.datatype == "multivaluelist":
        return None if all(v in keys for v in values) else "has a value that is not one of its keys"
    if len(values) > 1:
        return "takes a single value"
    value = values[0]
    if attribute.datatype == "singlevaluelist":
        return None if value in keys else "must be one of its keys"
    if attribute.datatype == "number":
        try:
            return None if math.isfinite(float(value)) else "must be a number"
        except ValueError:
            return "must be a number"
    if attribute.datatype == "datetime":
        return None if _aware(value) is not None else "must be an ISO 8601 date and time with a time zone"
    limit = 4000 if attribute.datatype == "text" else 1000
    if len(value) > limit:
        return f"is longer than {limit} characters"
    if attribute.datatype == "string" and "\n" in value:
        return "must be a single line"
    return None


def _aware(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None and moment.utcoffset() is not None else None


def parse_request_query(pairs: Sequence[tuple[str, str]], now: datetime) -> RequestQuery:
    """Validate a GET ``requests``; Open311Failure(400) listing every problem."""
    fields = single_values(pairs, ("service_request_id", "service_code", "start_date", "end_date", "status",
                                   "jurisdiction_id"))
    if "service_request_id" in fields:
        ids = _comma_list(fields["service_request_id"])
        if len(ids) > MAX_IDS or any(len(i) > 64 for i in ids):
            raise Open311Failure(400, f"service_request_id takes at most {MAX_IDS} ids of up to 64 characters")
        return RequestQuery(service_request_ids=ids)
    problems = []
    codes = _comma_list(fields.get("service_code", ""))
    if len(codes) > MAX_IDS or any(len(c) > 64 for c in codes):
        problems.append(f"service_code takes at most {MAX_IDS} codes of up to 64 characters")
    statuses = _comma_list(fields.get("status", ""))
    if any(s not in ("open", "closed") for s in statuses):
        problems.append("status must be open or closed")
    start = end = None
    for name in ("start_date", "end_date"):
        if name in fields:
            moment = _aware(fields[name])
            if moment is None:
                problems.append(f"{name} must be an ISO 8601 date and time with a time zone")
            elif name == "start_date":
                start = moment
            else:
                end = moment
    if problems:
        raise Open311Failure(400, *problems)
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - MAX_QUERY_SPAN
    if end is None:
        end = start + MAX_QUERY_SPAN
    if end < start:
        raise Open311Failure(400, "end_date is before start_date")
    if end - start > MAX_QUERY_SPAN:
        raise Open311Failure(400, "start_date and end_date may be at most 90 days apart")
    return RequestQuery(service_codes=codes, start=start, end=end,
                        statuses=tuple(s for s in ("open", "closed") if s in statuses))


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


# --- rendering -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Many:
    """A list: a JSON array, or in XML one ``tag`` element per item."""

    tag: str
    items: Sequence[Any]


def _discovery(d: Discovery) -> dict[str, Any]:
    return {
        "changeset": d.changeset,
        "contact": d.contact,
        "key_service": d.key_service,
        "endpoints": _Many("endpoint", [
            {"specification": e.specification, "url": e.url, "changeset": e.changeset, "type": e.type,
             "formats": _Many("format", list(e.formats))}
            for e in d.endpoints
        ]),
    }


def _service(s: Service) -> dict[str, Any]:
    return {"service_code": s.service_code, "service_name": s.service_name, "description": s.description,
            "metadata": s.metadata, "type": s.type, "keywords": ", ".join(s.keywords), "group": s.group}


def _definition(d: ServiceDefinition) -> dict[str, Any]:
    return {
        "service_code": d.service_code,
        "attributes": _Many("attribute", [
            {"variable": a.variable, "code": a.code, "datatype": a.datatype, "required": a.required,
             "datatype_description": a.datatype_description or None, "order": a.order,
             "description": a.description,
             **({"values": _Many("value", [{"key": v.key, "name": v.name} for v in a.values])}
                if a.datatype in ("singlevaluelist", "multivaluelist") else {})}
            for a in sorted(d.attributes, key=lambda a: a.order)
        ]),
    }


def _request(r: ServiceRequest) -> dict[str, Any]:
    return {
        "service_request_id": r.service_request_id, "status": r.status, "status_notes": r.status_notes,
        "service_name": r.service_name, "service_code": r.service_code, "description": r.description,
        "agency_responsible": r.agency_responsible, "service_notice": r.service_notice,
        "requested_datetime": r.requested_datetime, "updated_datetime": r.updated_datetime,
        "expected_datetime": r.expected_datetime, "address": r.address, "address_id": r.address_id,
        "zipcode": r.zipcode, "lat": r.lat, "long": r.long, "media_url": r.media_url,
    }


def _receipt(r: Receipt) -> dict[str, Any]:
    head = {"service_request_id": r.service_request_id} if r.service_request_id is not None else {"token": r.token}
    return {**head, "service_notice": r.service_notice, "account_id": r.account_id}


def render_discovery(d: Discovery, fmt: Format) -> bytes:
    return _render("discovery", _discovery(d), fmt)


def render_services(services: Sequence[Service], fmt: Format) -> bytes:
    return _render("services", _Many("service", [_service(s) for s in services]), fmt)


def render_definition(d: ServiceDefinition, fmt: Format) -> bytes:
    return _render("service_definition", _definition(d), fmt)


def render_requests(requests: Sequence[ServiceRequest], fmt: Format) -> bytes:
    return _render("service_requests", _Many("request", [_request(r) for r in requests[:MAX_RESULTS]]), fmt)


def render_receipt(receipt: Receipt, fmt: Format) -> bytes:
    return _render("service_requests", _Many("request", [_receipt(receipt)]), fmt)


def render_token(token: TokenStatus, fmt: Format) -> bytes:
    item = {"service_request_id": token.service_request_id, "token": token.token}
    return _render("service_requests", _Many("request", [item]), fmt)


def render_errors(errors: Sequence[Open311Error], fmt: Format) -> bytes:
    return _render("errors", _Many("error", [{"code": e.code, "description": e.description} for e in errors]), fmt)


def _render(root: str, body: Any, fmt: Format) -> bytes:
    if fmt == "json":
        return json.dumps(_json(body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    element = ET.Element(root)
    _fill(element, body)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(element, encoding="unicode").encode("utf-8")


def _json(value: Any) -> Any:
    if isinstance(value, _Many):
        return [_json(item) for item in value.items]
    if isinstance(value, dict):
        return {name: _json(item) for name, item in value.items()}
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, str):
        return xml_safe(value)  # also what UTF-8 cannot carry (lone surrogates)
    return value


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, _Many):
        for item in value.items:
            _fill(ET.SubElement(element, value.tag), item)
    elif isinstance(value, dict):
        for name, item in value.items():
            _fill(ET.SubElement(element, name), item)
    elif value is None:
        return
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif isinstance(value, datetime):
        element.text = _timestamp(value)
    else:
        element.text = xml_safe(str(value))


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"GeoReport date-times carry a time zone; got a naive {moment!r}")
    return moment.isoformat(timespec="seconds")
