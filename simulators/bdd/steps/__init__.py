"""The step library, one module per kind of step; :mod:`.registry` keeps the list for the docs."""
