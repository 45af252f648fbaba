"""Gherkin for returns-harness: a pytest-bdd step library, installed as a pytest plugin.

Any pytest run loads :mod:`simulators.bdd.plugin` (entry point ``pytest11``), so a team's own
``.feature`` files can use every step listed in docs/STEPS.md with a one-line binding module
(``scenarios("features")``). Importing this package is cheap: the world, the fakes and the
oracle are imported only when a scenario runs.
"""
