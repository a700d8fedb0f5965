{
    "name": "Quicksol Event Bus - test fixtures",
    "summary": "Models and observers used by the event bus's own tests (not for production)",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "author": "Quicksol",
    "website": "https://github.com/quicksol/quicksol-event-bus",
    "license": "LGPL-3",
    "depends": ["quicksol_event_bus"],
    "data": ["security/ir.model.access.csv"],
    "installable": True,
}
