{
    "name": "Quicksol Event Bus",
    "summary": "Domain events with inline and Celery/RabbitMQ observers, "
    "transactional outbox, exactly-once effects",
    "version": "18.0.1.0.0",
    "category": "Technical",
    "author": "Quicksol",
    "website": "https://github.com/quicksol/quicksol-event-bus",
    "license": "LGPL-3",
    "depends": ["base", "mail"],
    "external_dependencies": {"python": ["quicksol_bus", "kombu", "celery"]},
    "data": [
        "security/security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron.xml",
        "views/event_views.xml",
        "views/event_delivery_views.xml",
        "views/event_admin_views.xml",
        "views/event_report_views.xml",
        "views/menus.xml",
    ],
    "installable": True,
    "application": True,
}
