from . import event_admin_wizard
from . import bus_status
