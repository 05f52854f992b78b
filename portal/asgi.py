import os

from django.core.asgi import get_asgi_application

from portal.settings import default_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_module())
application = get_asgi_application()
