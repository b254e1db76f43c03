# flexlab: two commands do all the set-up on a fresh Debian 12 machine (as root):
#   make demo   install what the host needs, build, run the demo lab, write the report
#   make test   the whole suite exactly as CI runs it (.ci/run calls this), on pytest-xdist
#               workers (FLEXLAB_TEST_WORKERS=0: serially; docs/CI.md: sharding over machines)
.PHONY: setup demo test lint unit sim vm images nodeimage clean-labs bench bench-quick \
	bench-doc golden soak test-durations

VENV := .venv/bin
# Python may cache bytecode here (some CI images switch it off for every process): without
# it each test process and xdist worker compiles the project again (scripts/run-tests.sh)
unexport PYTHONDONTWRITEBYTECODE

setup:
	./scripts/setup-host.sh

demo: setup
	$(VENV)/flexlab demo

test: setup images nodeimage
	./scripts/run-tests.sh

# the Debian base (mmdebstrap, cached by package-list hash) and the Boot Proxy image FROM it
images: setup
	./images/build.sh

# kernel + busybox initramfs with the node agent, cached by content hash under build/nodeimage/
nodeimage: setup
	$(VENV)/python -m nodeimage build

lint:
	$(VENV)/ruff check .
	$(VENV)/mypy

unit:
	$(VENV)/pytest --tier unit -n auto

sim: setup
	$(VENV)/pytest --tier sim -n 4 --dist loadgroup

vm: setup images nodeimage
	$(VENV)/pytest --tier vm -n 2 --dist loadgroup

# the sim tier (tests and scenarios) N times under xdist: the flake table in
# docs/BENCHMARKS.md from bench/results/soak.json
N ?= 20
soak: setup images nodeimage
	$(VENV)/python scripts/soak.py --rounds $(N)

# refresh .test_durations (pytest-split's shard plan) from one whole run; commit it
test-durations: setup images nodeimage
	./scripts/run-tests.sh --store-durations --durations-path=.test_durations --clean-durations

clean-labs:
	$(VENV)/flexlab clean --all

# benchmarks against peers in the same run (dnsmasq, tftpd-hpa, nginx, perfdhcp); writes
# docs/BENCHMARKS.md and bench/results/*.json (~30 min: 3 runs per ProxyDHCP and storm figure;
# bench-quick < 3 min, into reports/)
bench: setup images nodeimage
	$(VENV)/python -m bench.run

# docs/BENCHMARKS.md again from bench/results/*.json (no measuring)
bench-doc:
	$(VENV)/python -m bench.report

bench-quick: setup images
	$(VENV)/python -m bench.run --quick --out reports/bench-quick --doc reports/bench-quick/BENCHMARKS.md

# re-record the golden captures of real QEMU firmware (SeaBIOS iPXE, OVMF PXE, OVMF iPXE EFI)
golden: setup
	$(VENV)/python scripts/record-golden.py --proxy dnsmasq --proxy bootproxy
