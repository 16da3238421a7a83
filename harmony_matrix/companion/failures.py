"""One middleware turns every failure into a page in the reader's language: a domain
error says what went wrong and what to do; an internal error shows only an error ID,
which is also in the server's log (with the path redacted) for the operator."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from harmony_matrix.companion.keys import RENDERER
from harmony_matrix.companion.language import chosen_language
from harmony_matrix.companion.security import redacted_path
from harmony_matrix.errors import HarmonyError, InvalidInput, NotAllowed, NotFound, RuleViolation
from harmony_matrix.i18n import Message, _

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_OF: dict[type[HarmonyError], int] = {
    InvalidInput: 400,
    NotAllowed: 403,
    NotFound: 404,
    RuleViolation: 409,
}

TITLE_OF_STATUS: dict[int, Message] = {
    400: _("There is a problem with what was sent"),
    403: _("You cannot do this"),
    404: _("Page not found"),
    405: _("This page cannot be used that way"),
    409: _("This cannot be done now"),
    413: _("What was sent is too large"),
    429: _("Too many attempts"),
}


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_page(request, error.status, None)
    except HarmonyError as error:
        status = next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)), 400)
        return error_page(request, status, error.message)
    except Exception:
        error_id = secrets.token_hex(4).upper()
        log.exception(
            "Internal error %s on %s %s", error_id, request.method, redacted_path(request.path)
        )
        return error_page(request, 500, None, error_id=error_id)


def error_page(
    request: web.Request,
    status: int,
    message: Message | None,
    *,
    error_id: str | None = None,
) -> web.Response:
    language = chosen_language(request)
    title = TITLE_OF_STATUS.get(status, _("Sorry, there is a problem with the service"))
    return request.app[RENDERER].page(
        request,
        "error.html",
        {"title": title, "message": message, "status": status, "error_id": error_id},
        language=language,
        status=status,
    )
