"""The wire forms of meao's API types: the only code that knows their camelCase JSON names.

One module per family of types (``packages``, ``subscriptions``, ``lcm``, ``grants``,
``notifications``, ``ops``); each type declares its wire names once (``fields.Field``) and cites the
clause of ETSI GS MEC 010-2 v3.1.1 it comes from. The API handlers, the notification outbox, the
granting service and the MEPM-V worker all render through these modules, which import nothing of
meao but its models, so every layer may use them.
"""
