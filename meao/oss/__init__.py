"""meao's OSS side: a client of its own Mm1 and ops APIs, and the operator commands built on it.

- ``meao.oss.client``: ``MeaoClient``, one proxy per API (``pkgm``, ``lcm``, ``ops``) on one HTTP session;
  where the endpoint comes from; the errors every call may raise.
- ``meao.oss.cli``: the ``meao package|app|op|subscription|host|queues|workers|jobs`` command groups, one
  module each, with the output, progress and error reporting they share; ``register(main)`` attaches them.
"""
