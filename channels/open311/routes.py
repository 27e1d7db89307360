"""The Open311 GeoReport v2 router under ``/open311/v2/``, over functions the caller passes in (``Open311Backend``).

No domain access here: the caller's functions list the services, make a request, and find requests and tokens, and
decide what is public (confidential tickets are not found; citizens' data is not in a ``ServiceRequest``).

Endpoints, each in ``.json`` and ``.xml``:
``GET discovery``, ``GET services``, ``GET services/{service_code}``, ``POST requests`` (form-encoded, ``api_key``
from ``HOTLINE_OPEN311_KEYS``), ``GET requests``, ``GET requests/{service_request_id}``, ``GET tokens/{token}``.

Errors come as the spec's list of {code, description} in the format asked for (XML when the format itself is
unknown): 400 for a malformed request, 403 for a missing or unknown API key, 404 for an unknown service, request,
token, jurisdiction or format, 413 for a body over ``HOTLINE_OPEN311_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from channels.open311.georeport import (
    FORMATS,
    MEDIA_TYPES,
    Discovery,
    Endpoint,
    Format,
    NewServiceRequest,
    Open311Failure,
    Receipt,
    RequestQuery,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
    parse_form,
    parse_new_request,
    parse_query_string,
    parse_request_query,
    render_definition,
    render_discovery,
    render_errors,
    render_receipt,
    render_requests,
    render_services,
    render_token,
    single_values,
)
from channels.open311.settings import Open311Settings

log = logging.getLogger(__name__)
PREFIX = "/open311/v2"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Open311Backend:
    """What the router needs from the hotline; every function is called in a worker thread."""

    list_services: Callable[[], Sequence[Service]]
    service_definition: Callable[[str], ServiceDefinition | None]  # None: no such service
    submit: Callable[[str, NewServiceRequest], Receipt]  # (client name, request); may raise Open311Failure
    find_requests: Callable[[RequestQuery], Sequence[ServiceRequest]]
    find_request: Callable[[str], ServiceRequest | None]  # None: unknown or not public
    find_token: Callable[[str], TokenStatus | None]  # None: unknown token
    now: Callable[[], datetime] = _utc_now
    #: (limit name, client) → None when allowed, else the seconds to wait; submissions are limited per client
    throttle: Callable[[str, str], int | None] = lambda _name, _client: None


def _format(fmt: str) -> Format:
    for known in FORMATS:
        if fmt == known:
            return known
    raise Open311Failure(404, f"unknown format {fmt[:20]!r}: use .json or .xml")


def _split(name: str) -> tuple[str, Format]:
    stem, dot, fmt = name.rpartition(".")
    if not dot or not stem:
        raise Open311Failure(404, "add the format to the resource: .json or .xml")
    return stem, _format(fmt)


def _answer(body: bytes, fmt: Format, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type=MEDIA_TYPES[fmt])


def _refusal(failure: Open311Failure, fmt: Format) -> Response:
    response = _answer(render_errors(failure.errors, fmt), fmt, failure.status)
    if failure.retry_after is not None:
        response.headers["Retry-After"] = str(failure.retry_after)
    return response


def _guess_format(text: str) -> Format:
    """The format to refuse in: JSON when the path asked for it, otherwise XML (the format the spec requires)."""
    return "json" if text.rpartition(".")[2] == "json" else "xml"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Open311Failure(413, f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Open311Failure(413, f"the body is larger than {limit} bytes")
    return bytes(body)


#: what the OpenAPI document says every Open311 endpoint answers: the resource or the spec's error list, in the
#: format the path names (XML when the format itself is unknown) — not the API's JSON ``ErrorOut``
_EITHER_FORMAT = {"application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}}
DOCUMENTED_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "the resource, in the format the path names", "content": _EITHER_FORMAT},
    "4XX": {"description": "the spec's error list [{code, description}] in the format asked for",
            "content": _EITHER_FORMAT},
}


def open311_router(backend: Open311Backend, settings: Open311Settings) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["open311"], responses=DOCUMENTED_RESPONSES)

    def query(request: Request) -> list[tuple[str, str]]:
        pairs = parse_query_string(request.scope.get("query_string", b""))
        check_jurisdiction(single_values(pairs, ("jurisdiction_id",)).get("jurisdiction_id"))
        return pairs

    def check_jurisdiction(given: str | None) -> None:
        if given is not None and settings.jurisdiction_id is not None and given != settings.jurisdiction_id:
            raise Open311Failure(404, f"jurisdiction_id {given[:64]!r} is not served here")

    @router.get("/discovery.{fmt}")
    def discovery(fmt: str, request: Request) -> Response:
        try:
            f = _format(fmt)
            url = str(request.base_url).rstrip("/") + PREFIX
            document = Discovery(changeset=settings.changeset, contact=settings.contact,
                                 key_service=settings.key_service,
                                 endpoints=(Endpoint(url=url, changeset=settings.changeset,
                                                     type="test" if settings.demo else "production"),))
            return _answer(render_discovery(document, f), f)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(fmt))

    @router.get("/services.{fmt}")
    def services(fmt: str, request: Request) -> Response:
        try:
            f = _format(fmt)
            query(request)
            return _answer(render_services(backend.list_services(), f), f)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(fmt))

    @router.get("/services/{name}")
    def service_definition(name: str, request: Request) -> Response:
        try:
            code, f = _split(name)
            query(request)
            definition = backend.service_definition(code)
            if definition is None:
                raise Open311Failure(404, f"service_code {code[:64]!r} not found")
            return _answer(render_definition(definition, f), f)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(name))

    @router.post("/requests.{fmt}")
    async def post_request(fmt: str, request: Request) -> Response:
        try:
            f = _format(fmt)
            body = await _read_body(request, settings.max_body_bytes)
            pairs = parse_form(body, request.headers.get("content-type"))
            fields = single_values(pairs, ("api_key", "service_code", "jurisdiction_id"))
            client = settings.client_for(fields.get("api_key") or request.query_params.get("api_key"))
            if client is None:
                raise Open311Failure(403, "api_key was not provided or is not valid")
            if wait := await run_in_threadpool(backend.throttle, "open311_key", client):
                raise Open311Failure.too_many(wait)
            check_jurisdiction(fields.get("jurisdiction_id"))
            code = fields.get("service_code")
            if code is None:
                raise Open311Failure(400, "service_code was not provided")
            definition = await run_in_threadpool(backend.service_definition, code)
            if definition is None:
                raise Open311Failure(404, f"service_code {code[:64]!r} not found")
            new = parse_new_request(pairs, definition)
            receipt = await run_in_threadpool(backend.submit, client, new)
            log.info("open311: %s submitted a %s request", client, code)
            return _answer(render_receipt(receipt, f), f, 201)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(fmt))

    @router.get("/requests.{fmt}")
    def get_requests(fmt: str, request: Request) -> Response:
        try:
            f = _format(fmt)
            wanted = parse_request_query(query(request), backend.now())
            return _answer(render_requests(backend.find_requests(wanted), f), f)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(fmt))

    @router.get("/requests/{name}")
    def get_request(name: str, request: Request) -> Response:
        try:
            request_id, f = _split(name)
            query(request)
            found = backend.find_request(request_id)
            if found is None:
                raise Open311Failure(404, f"service_request_id {request_id[:64]!r} not found")
            return _answer(render_requests([found], f), f)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(name))

    @router.get("/tokens/{name}")
    def get_token(name: str, request: Request) -> Response:
        try:
            token, f = _split(name)
            query(request)
            found = backend.find_token(token)
            if found is None:
                raise Open311Failure(404, f"token {token[:64]!r} not found")
            return _answer(render_token(found, f), f)
        except Open311Failure as failure:
            return _refusal(failure, _guess_format(name))

    return router
