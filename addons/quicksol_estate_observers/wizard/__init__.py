from . import property_import_wizard
