{
    "name": "Quicksol Real Estate Observers",
    "summary": "The seed observers of the real-estate domain: prospector auto-assignment, "
    "multi-tenancy validation, commission split, security audit log, notifications, "
    "property import",
    "version": "18.0.1.0.0",
    "category": "Real Estate",
    "website": "https://github.com/quicksol/quicksol-event-bus",
    "author": "Quicksol",
    "license": "LGPL-3",
    "installable": True,
    "application": False,
    "depends": ["bus", "mail", "quicksol_event_bus", "quicksol_estate"],
    "data": [
        "security/ir.model.access.csv",
        "security/quicksol_audit_log_rules.xml",
        "data/ir_config_parameter_data.xml",
        "data/ir_cron_data.xml",
        "views/quicksol_audit_log_views.xml",
        "wizard/property_import_wizard_views.xml",
        "views/quicksol_estate_observers_menus.xml",
    ],
}
