"""Binds every shipped .feature file in this folder to pytest (the steps come from the installed
plugin, simulators.bdd). Run: pytest features/ [--sut-url URL] [-m duplicates] [--defect NAME]."""

from pytest_bdd import scenarios

scenarios(".")
