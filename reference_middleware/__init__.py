"""A reference integration layer between the returns portal, the carrier, the WMS and the ERP.

Built from docs/CONTRACT.md alone, as a user's middleware in another repository would be: it
imports nothing from ``simulators`` and talks to the fakes over HTTP only. Webhooks are
verified, stored in a durable inbox and acknowledged; workers then run the return-to-credit
workflow, one return at a time, with every step recorded so that a crash, a retry or a
redelivery never does a step twice. Known defects (``defects.py``) can be switched on by name
to show that each check of the harness can fail.
"""
