#!/usr/bin/env bash
# Runs the lessons once with Docker and once with minidocker-net (each in its
# own throwaway host, Docker's engine included), then both on one host, and
# prints side by side what each built and how it behaved. Exits non-zero on
# a behavioural mismatch. Run as root on Debian: sudo scripts/compare-with-docker.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"
need_root
ensure_runtime
ensure_packages dockerd:docker.io busybox:busybox-static dnsmasq:dnsmasq-base
build
(cd "$REPO" && CGO_ENABLED=0 go build -o "$REPO/bin/mdn-compare" ./compare)
exec "$REPO/bin/mdn-compare" -mdn "$BIN" "$@"
