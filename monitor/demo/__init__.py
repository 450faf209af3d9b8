"""The simulated school (``school``), the lab that runs its agents on loopback
(``simlab``, also used by the tests and benchmarks) and ``python -m monitor.demo``."""
