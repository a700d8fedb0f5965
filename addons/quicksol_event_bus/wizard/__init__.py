from . import event_admin_wizard
