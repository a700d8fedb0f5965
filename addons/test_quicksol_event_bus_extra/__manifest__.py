{
    "name": "Quicksol Event Bus - extra observer for install tests",
    "summary": "One observer, installed and uninstalled by the tests while Odoo runs",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "author": "Quicksol",
    "website": "https://github.com/quicksol/quicksol-event-bus",
    "license": "LGPL-3",
    "depends": ["test_quicksol_event_bus"],
    "installable": True,
}
