"""Locust load tests for a returns peak: users, load shapes, SLA gates and the load environment.

Only ``locustfile.py``, ``users.py`` and ``shapes.py`` import Locust (which monkey-patches the
standard library with gevent); the other modules are plain Python, so the fakes' process and
pytest can use them without Locust.
"""
