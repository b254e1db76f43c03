# flexlab: two commands do all the set-up on a fresh Debian 12 machine (as root):
#   make demo   install what the host needs, build, run the demo lab, write the report
#   make test   the whole suite exactly as CI runs it (.ci/run calls this)
.PHONY: setup demo test lint unit sim vm images nodeimage clean-labs bench bench-quick golden

VENV := .venv/bin

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
	$(VENV)/pytest --tier unit

sim: setup
	$(VENV)/pytest --tier sim

vm: setup
	$(VENV)/pytest --tier vm

clean-labs:
	$(VENV)/flexlab clean --all

# benchmarks against peers in the same run (dnsmasq, tftpd-hpa, nginx, perfdhcp); writes
# docs/BENCHMARKS.md and bench/results/*.json (~10 min; bench-quick < 3 min, into reports/)
bench: setup images nodeimage
	$(VENV)/python -m bench.run

bench-quick: setup images
	$(VENV)/python -m bench.run --quick --out reports/bench-quick --doc reports/bench-quick/BENCHMARKS.md

# re-record the golden captures of real QEMU firmware (SeaBIOS iPXE, OVMF PXE, OVMF iPXE EFI)
golden: setup
	$(VENV)/python scripts/record-golden.py --proxy dnsmasq --proxy bootproxy
