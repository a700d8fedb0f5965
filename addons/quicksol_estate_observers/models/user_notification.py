"""Tell a user something twice: in the web client now, by e-mail through the mail queue."""

import logging

from markupsafe import Markup, escape

_logger = logging.getLogger(__name__)

__all__ = ["notify_user"]


def notify_user(user, title, message, notification_type="success"):
    """Send ``user`` a web notification and queue an e-mail with the same text.

    The web notification goes through ``bus.bus`` (delivered after commit, to every open
    tab of the user); the e-mail is a ``mail.mail`` left in the outgoing queue, so the mail
    cron sends it and a slow SMTP server never holds a worker. No e-mail when the user has
    no address. Returns the queued ``mail.mail`` (empty when none).
    """
    user._bus_send(
        "simple_notification",
        {
            "title": title,
            "message": message,
            "type": notification_type,
            "sticky": False,
        },
    )
    # sudo - mail.mail: users may not create mail.mail; the text is ours, the recipient
    # is the user being told about their own work.
    Mail = user.env["mail.mail"].sudo()
    if not user.email:
        _logger.info("user %s has no e-mail address; web notification only", user.login)
        return Mail
    # sudo - res.company: the sender address of the user's company.
    sender = user.sudo().company_id.email_formatted or user.env.company.sudo().email_formatted
    return Mail.create(
        {
            "subject": title,
            "email_to": user.email_formatted,
            "email_from": sender or False,
            "body_html": Markup("<p>%s</p>") % escape(message),
            "auto_delete": True,
        }
    )
