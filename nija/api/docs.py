"""The API docs pages, Swagger UI and ReDoc, served entirely from the project's own static files.

drf-spectacular's stock pages put their start-up code in inline scripts and ReDoc's page loads web fonts from
another host; both break under the project's Content-Security-Policy (`script-src 'self'`). These views render
the same pages from templates whose only scripts are static files: Swagger UI through drf-spectacular's split
view (its start-up script is a second, same-origin request), ReDoc through a small static start-up script that
reads the schema address from the page.

ReDoc alone also needs inline styles (its styled components write `<style>` elements at run time): its page,
and only its page, adds `'unsafe-inline'` to `style-src`.
"""

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "api_docs/swagger_ui.html"


@method_decorator(csp_update({"style-src": ["'unsafe-inline'"]}), name="dispatch")
class RedocDocsView(SpectacularRedocView):
    template_name = "api_docs/redoc.html"
