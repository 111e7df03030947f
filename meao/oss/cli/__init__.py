"""The OSS/operator commands of ``meao``: a command-line client of the MEAO's own Mm1 and ops APIs.

``register(main)`` adds these groups to the ``meao`` command, in python-openstackclient style::

    meao package create|upload|list|show|enable|disable|delete     package.py (+ onboarding.py)
    meao app create|instantiate|operate|terminate|list|show|delete app.py
    meao op list|show|retry|fail|cancel                            op.py
    meao subscription create|list|show|delete                      subscription.py
    meao host list|show|set|delete|capacity                        host.py
    meao queues list|show|purge, meao workers list|drain|resume, meao jobs list|retry

Every command takes ``--os-endpoint URL``, ``--os-profile NAME`` and ``--timeout SECONDS`` (see
``meao.oss.client.endpoint`` for how the endpoint is chosen: option > ``MEAO_ENDPOINT`` >
``~/.config/meao/client.yaml`` > ``http://127.0.0.1:8080``); commands that print take
``-f table|json|yaml|value`` and ``-c COLUMN`` (repeatable), see ``output``. Progress goes to stderr
(``progress``); every error becomes a message, a hint and a documented exit code (``errors``, ``hints``).
The list/show/delete commands of all groups are built by the factories of ``verbs``.
"""

from __future__ import annotations

import click

from meao.oss.cli.app import app
from meao.oss.cli.errors import EXIT_CODES_EPILOG
from meao.oss.cli.host import host
from meao.oss.cli.jobs import jobs
from meao.oss.cli.op import op
from meao.oss.cli.package import package
from meao.oss.cli.queues import queues
from meao.oss.cli.subscription import subscription
from meao.oss.cli.workers import workers


def register(main: click.Group) -> None:
    """Add the OSS and ops command groups (package, app, op, subscription, host, queues, workers, jobs)."""
    for group in (package, app, op, subscription, host, queues, workers, jobs):
        main.add_command(group)
    if not main.epilog:
        main.epilog = EXIT_CODES_EPILOG
