"""GET /api/metrics/stream: the Server-Sent Events stream, served by the events process (uvicorn).

Everything that can refuse a client is decided before the stream starts, and answered as a JSON error like any
other endpoint: no credentials 401; a reader that is neither an operator nor a bot 403; a channel the reader may
not read 403 (a bot on `dashboard`) or 404 (another account's channel, an unknown channel, an account that does
not exist); a malformed `Last-Event-ID` 400; the holder's open streams at EVENTS_MAX_STREAMS_PER_TOKEN 429; the
events' Redis unreachable 503; the web process (WSGI cannot hold streams) 421. Only then does the stream start
(nija.event_stream, on django-eventstream's request, storage and listener interfaces).

Readers: operators (a staff session, as the dashboard page opens it, or an operator token) read `dashboard` and
any `account-<id>`; a bot token reads only `account-<its own id>`. The channel manager decides from a small
`StreamReader` value, never the database, because django-eventstream asks it again on every storage read.

An open stream holds no PostgreSQL connection: the database is read once, during authorization, and this
thread's connections are closed before the stream starts. It holds no thread either: it is a coroutine of the
events process's event loop (nija.event_stream), woken by the supervised fan-out listener (nija.event_listener).
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import StreamingHttpResponse
from django_eventstream.channelmanager import ChannelManagerBase
from django_eventstream.eventrequest import EventRequest
from django_eventstream.utils import add_default_headers, parse_last_event_id
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from redis import RedisError
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import TokenKind, TradingInstance
from accounts.permissions import request_principal
from monitoring.stream_credentials import SESSION_CREDENTIAL, TOKEN_CREDENTIAL
from nija.errors import DomainError, ServiceUnavailableError
from nija.event_store import current_positions
from nija.event_stream import event_stream
from nija.events import DASHBOARD_CHANNEL
from nija.stream_leases import lease_take

MAX_CHANNELS = 10
MAX_LAST_EVENT_ID_LENGTH = 2048
_ACCOUNT_CHANNEL = re.compile(r"account-([1-9][0-9]{0,17})")
_ERROR_SHAPE = OpenApiResponse(description='`{"error": {"code", "message", "fields"?}}`')


@dataclass(frozen=True)
class StreamReader:
    """Who reads a stream: `holder` names whose open-stream cap it counts against, `credential` what it was let in
    with (`token:<id>` or `session:<key>`: checked again while the stream runs, `credentials_fallen`)."""

    holder: str
    is_operator: bool
    credential: str
    account_id: int | None = None


def account_id_of(channel: str) -> int | None:
    match = _ACCOUNT_CHANNEL.fullmatch(channel)  # `$` would let a trailing line break through
    return int(match.group(1)) if match else None


def channel_refusal(reader: StreamReader, channel: str) -> type[NotFound] | type[PermissionDenied] | None:
    """Why `reader` may not read `channel` (the error to answer), or None when it may."""
    account_id = account_id_of(channel)
    if channel == DASHBOARD_CHANNEL:
        return None if reader.is_operator else PermissionDenied
    if account_id is None:
        return NotFound
    if reader.is_operator or account_id == reader.account_id:
        return None
    return NotFound  # another bot's channel: as for every other read, the account does not exist for this bot


class StreamChannelManager(ChannelManagerBase):
    """django-eventstream's channel manager (EVENTSTREAM_CHANNELMANAGER_CLASS): no database, every call."""

    def get_channels_for_request(self, request, view_kwargs) -> set[str]:
        return set(request.GET.getlist("channel"))

    def can_read_channel(self, user, channel: str) -> bool:
        return isinstance(user, StreamReader) and channel_refusal(user, channel) is None

    def is_channel_reliable(self, channel: str) -> bool:
        return True


class TooManyStreams(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_streams"
    default_detail = "This token already holds as many open streams as it may."


class WrongServer(DomainError):
    status_code = status.HTTP_421_MISDIRECTED_REQUEST
    default_code = "served_by_events_process"
    default_detail = "The event stream is served by the events process (EVENTS_PORT), not by this server."


class JsonErrorsNegotiation(BaseContentNegotiation):
    """EventSource asks for `text/event-stream` only: the stream answers in it, and every refusal in JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsStreamApi(APIView):
    """Live events of the channels asked for, as Server-Sent Events."""

    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        operation_id="metrics_stream",
        parameters=[
            OpenApiParameter("channel", str, many=True, description="`dashboard` or `account-<id>`; up to 10."),
            OpenApiParameter(
                "Last-Event-ID",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="The last event id received: the stream replays what came after it.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Events `metrics`, `risk_event`, `position`, `state`, `alert`; `stream-reset` when events "
                "were missed that the store no longer holds; `keep-alive` every 20 s; `stream-closed`, then the end, "
                "once the credentials the stream was opened with no longer stand.",
            ),
            **{code: _ERROR_SHAPE for code in (400, 401, 403, 404, 421, 429, 503)},
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        if not isinstance(request._request, ASGIRequest):
            raise WrongServer()
        reader = _reader(request)
        channels = _channels(request, reader)
        last_ids = _last_event_ids(request, channels)
        _check_store_reachable(channels)
        lease = lease_take(holder=reader.holder, cap=_stream_cap())
        if lease is None:
            raise TooManyStreams()
        connections.close_all()  # nothing below reads the database: an idle stream holds no connection
        event_request = _event_request(reader, channels, last_ids)
        events = event_stream(event_request, holder=reader.holder, lease=lease, credential=reader.credential)
        response = StreamingHttpResponse(events, content_type="text/event-stream")
        add_default_headers(response, request=request._request)
        return response


def _stream_cap() -> int:
    return settings.EVENTS_MAX_STREAMS_PER_TOKEN


def _reader(request: Request) -> StreamReader:
    principal = request_principal(request)
    user = request.user
    if principal is None:
        if user.is_staff:
            credential = f"{SESSION_CREDENTIAL}{request.session.session_key}"
            return StreamReader(holder=f"session-user-{user.pk}", is_operator=True, credential=credential)
        raise PermissionDenied("Only operators and bots read the event stream.")
    token = f"token-{principal.token_id}"
    credential = f"{TOKEN_CREDENTIAL}{principal.token_id}"
    if principal.kind == TokenKind.OPERATOR and user.is_staff:
        return StreamReader(holder=token, is_operator=True, credential=credential)
    if principal.kind == TokenKind.BOT and principal.instance_id is not None:
        return StreamReader(holder=token, is_operator=False, credential=credential, account_id=principal.instance_id)
    raise PermissionDenied("Only operators and bots read the event stream.")


def _channels(request: Request, reader: StreamReader) -> list[str]:
    channels = sorted(set(request.query_params.getlist("channel")))
    if not channels:
        raise ValidationError({"channel": ["Name at least one channel: `dashboard` or `account-<id>`."]})
    if len(channels) > MAX_CHANNELS:
        raise ValidationError({"channel": [f"At most {MAX_CHANNELS} channels a stream."]})
    refusals = {channel: channel_refusal(reader, channel) for channel in channels}
    if NotFound in refusals.values() or not _accounts_exist(channels):
        raise NotFound("No such channel.")
    if PermissionDenied in refusals.values():
        raise PermissionDenied("Only operators read the dashboard channel.")
    return channels


def _accounts_exist(channels: list[str]) -> bool:
    wanted = {account_id for channel in channels if (account_id := account_id_of(channel)) is not None}
    return not wanted or TradingInstance.objects.filter(pk__in=wanted).count() == len(wanted)


def _last_event_ids(request: Request, channels: list[str]) -> dict[str, str]:
    """The stream positions the client says it has, per requested channel (`Last-Event-ID` or `?lastEventId=`)."""
    raw = request.headers.get("Last-Event-ID") or request.query_params.get("lastEventId") or ""
    if not raw:
        return {}
    if len(raw) > MAX_LAST_EVENT_ID_LENGTH or raw == "error":
        raise ValidationError({"Last-Event-ID": ["Not an event id of this stream."]})
    try:
        parsed = {unquote(channel): last_id for channel, last_id in parse_last_event_id(raw).items()}
    except ValueError:
        raise ValidationError({"Last-Event-ID": ["Not an event id of this stream."]}) from None
    if not all(last_id.isascii() and last_id.isdigit() for last_id in parsed.values()):
        raise ValidationError({"Last-Event-ID": ["Not an event id of this stream."]})
    return {channel: last_id for channel, last_id in parsed.items() if channel in channels}


def _check_store_reachable(channels: list[str]) -> None:
    try:
        current_positions(channels)
    except RedisError:
        message = "The event store is unreachable; try again shortly."
        raise ServiceUnavailableError(message, code="events_unavailable") from None


def _event_request(reader: StreamReader, channels: list[str], last_ids: dict[str, str]) -> EventRequest:
    event_request = EventRequest()
    event_request.channels = set(channels)
    event_request.channel_last_ids = last_ids
    event_request.is_next = event_request.is_recover = False
    event_request.user = reader
    return event_request
