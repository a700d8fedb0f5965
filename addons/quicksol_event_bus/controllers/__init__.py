from . import status_api
from . import rpc
