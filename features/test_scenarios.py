"""Binds every shipped .feature file in this folder to pytest (the steps come from the installed
plugin, simulators.bdd). Run: pytest features/ [--rh-sut-url URL] [-m duplicates] [--rh-defect NAME]."""

from pytest_bdd import scenarios

scenarios(".")
