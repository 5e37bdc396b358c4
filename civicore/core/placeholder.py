from django.http import HttpRequest, HttpResponse


def not_yet(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return HttpResponse("Coming soon", status=501)
