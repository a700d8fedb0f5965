from . import status_api
