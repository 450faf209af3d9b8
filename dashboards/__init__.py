"""netmon's Grafana dashboards as code.

:mod:`dashboards.boards` builds each dashboard with grafana-foundation-sdk,
:mod:`dashboards.build` renders them into the committed JSON under ``dashboards/json/``
(``netmon dashboards build`` regenerates it, ``--check`` finds stale files).
"""
