"""flexlab benchmarks: ProxyDHCP rate/latency, TFTP/HTTP throughput, the boot storm.

Scripts, not tests: each writes raw JSON under bench/results/ and
``bench/run.py`` gathers them into docs/BENCHMARKS.md.
"""
