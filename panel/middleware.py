"""Request filters that run before anything touches the database."""

from django.http import Http404, JsonResponse


class RefuseNulInPath:
    """A NUL byte in the path names nothing: answer 404 at once.

    PostgreSQL cannot hold NUL in text, so such a segment would otherwise
    reach a query and fail there with a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" not in request.path_info:
            return self.get_response(request)
        if request.path_info.startswith("/panel/"):
            raise Http404
        return JsonResponse({"detail": "Not found."}, status=404)
