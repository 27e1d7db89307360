"""Mount the desk on the core app: the pages, their static files, ``/ws`` and the ``/api/desk`` endpoints.

Pages are plain HTML + ES modules (no build step). Every page is served with a strict Content-Security-Policy
(scripts only from this origin, no inline scripts) as a second line of defence: the first is that the pages
insert citizen text with ``textContent`` only, never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from agent_ui.api import ROUTERS as DESK_ROUTERS
from agent_ui.hub import Hub
from hotline.services import Services

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = "/static/vendor/swagger-ui"
PAGES = {
    "/": "login.html",
    "/desk/agent": "agent.html",
    "/desk/unit": "unit.html",
    "/desk/callback": "callback.html",
    "/desk/supervisor": "supervisor.html",
    "/desk/admin": "admin.html",
    "/public": "public.html",  # the citizen's own page: no account
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        # blob: for the attachments, which the desk fetches with its token and shows as object URLs
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def _bus_namespace(services: Services) -> str:
    """Presence keys live next to the bus channel (tests give each app pair its own channel)."""
    channel = getattr(services.bus, "_channel", None)
    return str(channel) if channel else "hotline"


#: where the browser phone (Twilio's Voice JavaScript SDK, ``HOTLINE_TWILIO_BROWSER_PHONE``) signals, reports and
#: fetches its ring tones: allowed by the pages' CSP only when the city enables it
BROWSER_PHONE_CONNECT = "wss://*.twilio.com https://*.twilio.com"
BROWSER_PHONE_MEDIA = "https://sdk.twilio.com"


def page_headers(browser_phone: bool) -> dict[str, str]:
    if not browser_phone:
        return SECURITY_HEADERS
    csp = (SECURITY_HEADERS["Content-Security-Policy"]
           .replace("connect-src 'self'", f"connect-src 'self' {BROWSER_PHONE_CONNECT}")
           .replace("media-src 'self' blob:", f"media-src 'self' blob: {BROWSER_PHONE_MEDIA}"))
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


def _page(filename: str, headers: dict[str, str] = SECURITY_HEADERS) -> FileResponse:
    return FileResponse(STATIC / filename, media_type="text/html; charset=utf-8", headers=headers)


def _page_endpoint(filename: str, headers: dict[str, str]) -> Callable[[], FileResponse]:
    # A closure, not a default argument: FastAPI would turn a parameter into a query string option.
    def page() -> FileResponse:
        return _page(filename, headers)

    return page


def mount(app: FastAPI, services: Services) -> Hub:
    """Add the desk to ``app``; the hub starts with the app (``app.state.startup_hooks``)."""
    hub = Hub(services, namespace=_bus_namespace(services))
    app.state.desk_hub = hub
    app.state.startup_hooks.append(hub.run)
    for router in DESK_ROUTERS:
        app.include_router(router)

    phone = services.settings.phone
    headers = page_headers(phone.phone_enabled and phone.twilio_browser_phone)
    for path, filename in PAGES.items():
        app.add_api_route(path, _page_endpoint(filename, headers), methods=["GET"], include_in_schema=False,
                          name=f"desk:{filename}")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # browsers ask every page for it; an SVG under the old name is what they accept without a <link>
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    @app.websocket("/ws")
    async def desk_socket(websocket: WebSocket) -> None:
        await app.state.desk_hub.handle(websocket)

    app.mount("/static", StaticFiles(directory=STATIC), name="desk-static")
    _mount_docs(app)
    return hub


def _mount_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI from ``static/vendor`` instead of a CDN (an intranet has no internet)."""
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in ("/docs", "/redoc")]
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} — API"

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=title,
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False, name="docs")
