"""The ``netmon`` command line: one module per command group.

``app`` holds the parser, ``main`` and the probe commands; ``service`` check-config,
inventory and run; ``alerts``, ``dashboards``, ``discover`` and ``report`` their own
groups. ``output`` and ``nagios`` render results for people and for Nagios.
"""
