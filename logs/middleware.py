"""Correlation id of every HTTP request: validated from `X-Request-ID` or generated, bound, echoed; and the
client address every line of the request carries (`ip`, from `nija.client_ip`, the address the limiters count).

This middleware runs first, outside `nija.middleware.ApiErrorMiddleware`, so even the JSON 413 that middleware
answers before any other layer runs carries the header. django-structlog's `RequestMiddleware` (further in)
is told to trust the header (`DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID`) only because this middleware has
already replaced an absent or unsafe value with a fresh uuid4.
"""

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from nija.client_ip import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_valid_request_id(value: str | None) -> bool:
    """At most 64 characters from [A-Za-z0-9._-]: safe in headers, log lines and Redis."""
    return bool(value) and _SAFE_REQUEST_ID.fullmatch(value) is not None


def request_id_from(value: str | None) -> str:
    """The caller's id when it is safe, else a fresh uuid4."""
    return value if is_valid_request_id(value) else str(uuid.uuid4())


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        request_id = self._bind(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = self._bind(request)
        response = await self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    @staticmethod
    def _bind(request: HttpRequest) -> str:
        request_id = request_id_from(request.META.get(REQUEST_ID_META))
        request.META[REQUEST_ID_META] = request_id
        request.__dict__.pop("headers", None)  # HttpRequest.headers is cached: let it see the validated id
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()  # nothing from the thread's previous request
        structlog.contextvars.bind_contextvars(request_id=request_id, ip=client_ip(request))
        return request_id
