# The two commands of the README's quick start.
.PHONY: demo test setup bench-icmp bench-snmp bench-discover bench-scale bench-chaos lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/python -m monitor.demo

test: setup
	.venv/bin/python -m pytest -ra $(PYTEST_ARGS)

bench-icmp: setup
	.venv/bin/python benchmarks/icmp_sweep.py $(BENCH_ARGS)

bench-snmp: setup
	.venv/bin/python benchmarks/snmp_walk.py $(BENCH_ARGS)

bench-discover: setup
	.venv/bin/python benchmarks/discover_sweep.py $(BENCH_ARGS)

bench-scale: setup
	.venv/bin/python benchmarks/daemon_scale.py $(BENCH_ARGS)

bench-chaos: setup
	.venv/bin/python benchmarks/chaos_fleet.py $(BENCH_ARGS)

lint: setup
	.venv/bin/pip install -q -e '.[dev]' && .venv/bin/ruff check . && .venv/bin/mypy monitor probes alerts
