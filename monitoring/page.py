"""GET /dashboard/: the operator page, served by the web process to staff with an admin session.

The page is static markup plus ES modules (monitoring/static/monitoring/dashboard/): everything it shows it reads
from the JSON API with the session, everything it changes goes through the same API endpoints with the session
and the CSRF token (so a role the page hides a button from is refused by the API anyway), and it stays live
through the events process's stream (`dashboard` channel, EventSource with credentials). This view only decides
who may open the page and tells the scripts what they need: the stream's address, the CSRF token and which
actions the operator's roles allow (to hide the buttons that would be refused).
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from nija.events import DASHBOARD_CHANNEL

# What each button needs: the same permissions the API's views check.
CAPABILITIES = {
    "approve": "risk.approve_position",  # approve, reject, cancel a reservation
    "halt": "risk.halt_trading",  # halt, reduce, resume
    "manage_equity": "risk.manage_equity",  # confirm a held equity increase
}


def stream_origin(request: HttpRequest) -> str:
    """The events origin the page's EventSource opens: none (its own origin) when the page is served from an
    events origin (one public origin behind the proxy), else the events origin on the page's own host name (the
    session cookie belongs to the host name, so 127.0.0.1 and localhost each need their own), else the first."""
    own = f"{request.scheme}://{request.get_host()}"
    origins = settings.EVENTS_ORIGINS
    if own in origins or not origins:
        return ""
    host = urlsplit(own).hostname
    return next((origin for origin in origins if urlsplit(origin).hostname == host), origins[0])


@never_cache
@staff_member_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "stream_url": f"{stream_origin(request)}/api/metrics/stream?channel={DASHBOARD_CHANNEL}",
        "can": {name: user.has_perm(permission) for name, permission in CAPABILITIES.items()},
        "roles": [*sorted(user.groups.values_list("name", flat=True)), *(["superuser"] if user.is_superuser else [])],
    }
    return render(request, "monitoring/dashboard.html", context)
