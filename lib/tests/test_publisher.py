"""The publisher's task messages are the ones Celery's ``as_task_v2`` builds (no broker needed)."""

from quicksol_bus.publisher import OutgoingMessage, Publisher
from quicksol_bus.topology import TASK_NAME


def _message(number):
    envelope = {"event_id": f"uuid-{number}", "observer": "x.audit", "event_name": "x.created", "n": number}
    return OutgoingMessage(
        task_id=f"uuid-{number}:x.audit", envelope=envelope, queue="audit_events", priority=3
    )


def test_templated_message_equals_celery_as_task_v2():
    publisher = Publisher("amqp://guest:guest@127.0.0.1:1//")  # never connects
    for number in range(3):  # the first builds the template, the others reuse it
        message = _message(number)
        body, headers, properties = publisher._task_message(message)
        task = publisher._app.amqp.as_task_v2(
            message.task_id,
            TASK_NAME,
            args=[message.envelope],
            kwargs={},
            argsrepr=f"[{message.envelope['event_name']} {message.task_id}]",
        )
        expected = dict(task.headers, quicksol_event_id=f"uuid-{number}", quicksol_observer="x.audit")
        assert headers == expected
        assert properties == dict(task.properties)
        assert body == task.body


def test_messages_do_not_share_headers():
    publisher = Publisher("amqp://guest:guest@127.0.0.1:1//")
    first = publisher._task_message(_message(1))[1]
    second = publisher._task_message(_message(2))[1]
    assert (first["id"], second["id"]) == ("uuid-1:x.audit", "uuid-2:x.audit")
