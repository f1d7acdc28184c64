"""The benchmark server's WSGI application: the project's, except that paths under `/bench/nomw/` are answered by
a Django handler with no middleware at all (the floor any middleware is measured against)."""

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

NO_MIDDLEWARE_PREFIX = "/bench/nomw/"


class NoMiddlewareHandler(WSGIHandler):
    """Django's WSGI handler with an empty middleware chain: URL resolution, the view, the response."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)


project_application = get_wsgi_application()
no_middleware_application = NoMiddlewareHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(NO_MIDDLEWARE_PREFIX):
        return no_middleware_application(environ, start_response)
    return project_application(environ, start_response)
