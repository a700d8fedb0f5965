"""Load the broker definitions generated from the topology into a running RabbitMQ.

``python import_definitions.py [--url URL] [--timeout S] DEFINITIONS.json`` waits until the
management API at URL answers (at most S seconds), posts the file to ``/api/definitions``
(exchanges, queues and bindings are created; existing identical ones are left alone), then
checks that every queue of the file exists with the file's arguments. Credentials come from
``RABBITMQ_DEFAULT_USER`` / ``RABBITMQ_DEFAULT_PASS``. Exit 0 on success, 1 otherwise.

Why not RabbitMQ's own import on boot (``load_definitions``): a node that imports
definitions at boot does not create its default user, and the generated file holds no users
(no credentials are committed), so the broker would have no account at all. The compose
service ``broker-init`` runs this once the broker is healthy instead. Standard library only:
it runs in the workers image and on any host with Python 3.
"""

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def _request(url, user, password, method="GET", body=None, timeout=10):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def wait_for_api(base, user, password, timeout):
    """Return once ``/api/overview`` answers; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _request(f"{base}/api/overview", user, password)
        except (OSError, urllib.error.URLError) as error:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"RabbitMQ management API at {base} not ready: {error}") from error
        time.sleep(1)  # polling a remote service until a deadline, not synchronising a test


def import_definitions(base, user, password, definitions):
    """Post ``definitions``; return the names of the queues checked afterwards."""
    _request(f"{base}/api/definitions", user, password, method="POST", body=definitions, timeout=30)
    checked = []
    for queue in definitions.get("queues", ()):
        vhost = urllib.parse.quote(queue["vhost"], safe="")
        name = urllib.parse.quote(queue["name"], safe="")
        info = _request(f"{base}/api/queues/{vhost}/{name}", user, password)
        if info.get("arguments", {}) != queue.get("arguments", {}):
            raise RuntimeError(
                f"queue {queue['name']} exists with arguments {info.get('arguments')}, not "
                f"{queue.get('arguments')}: delete it and run again (docs/operations.md, upgrades)"
            )
        checked.append(queue["name"])
    return checked


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("definitions", help="definitions JSON (compose/rabbitmq/definitions.json)")
    parser.add_argument("--url", default=os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://rabbitmq:15672"))
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    user = os.environ.get("RABBITMQ_DEFAULT_USER", "guest")
    password = os.environ.get("RABBITMQ_DEFAULT_PASS", "guest")
    base = args.url.rstrip("/")
    with open(args.definitions, encoding="utf-8") as fh:
        definitions = json.load(fh)
    try:
        wait_for_api(base, user, password, args.timeout)
        queues = import_definitions(base, user, password, definitions)
    except (OSError, urllib.error.URLError, TimeoutError, RuntimeError) as error:
        sys.stderr.write(f"import_definitions: {error}\n")
        return 1
    sys.stdout.write(f"import_definitions: {len(queues)} queues in place: {', '.join(queues)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
