#!/usr/bin/env bash
# Benchmarks, side by side with Docker: command latency, scaling curves,
# iperf3 throughput on every published path, what keeps running. Docker's
# engine is installed (Debian's docker.io) but started only inside the
# benchmark's throwaway host, like everything else here, so the machine is
# left as it was. Results: bench-results/{report.md,results.json,scaling.png}.
# Run as root on Debian: sudo scripts/bench.sh [-quick] [-docker=false]
set -euo pipefail
. "$(dirname "$0")/setup.sh"
need_root
ensure_runtime
ensure_packages iperf3:iperf3 gnuplot:gnuplot-nox busybox:busybox-static ss:iproute2 dnsperf:dnsperf dnsmasq:dnsmasq-base
if [[ " $* " != *" -docker=false "* ]]; then
	ensure_packages dockerd:docker.io
fi
build
(cd "$REPO" && CGO_ENABLED=0 go build -o "$REPO/bin/mdn-bench" ./bench)
cd "$REPO"
exec "$REPO/bin/mdn-bench" -mdn "$BIN" -out "$REPO/bench-results" "$@"
