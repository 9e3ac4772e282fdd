"""Hook specifications and the models that cross plugin boundaries.

``base`` holds the registrar hooks every plugin may implement; each subsystem has one module
of its own with its policy hooks, its frozen models and its adapter protocols.
"""
