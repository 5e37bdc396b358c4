import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
application = get_wsgi_application()
# What is loaded by now (Django, the apps, their modules) lives as long as the process: taken out
# of the garbage collector's generations, it is no longer walked by every full collection, which
# otherwise pauses a worker for tens of milliseconds every few hundred requests.
gc.freeze()
