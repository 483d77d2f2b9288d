#!/usr/bin/env bash
# The README's main command: install what is needed, build minidocker-net,
# put it on PATH, and run the guided demo of the Docker networking lessons.
# The demo builds everything in a throwaway host, so the machine is left as
# it was. Run as root on Debian: sudo scripts/demo.sh [demo flags, e.g. --step]
# (--multi-host: the overlay lesson, three hosts on one etcd).
set -euo pipefail
. "$(dirname "$0")/setup.sh"
need_root
ensure_runtime
case " $* " in *" --multi-host "*) ensure_packages etcd:etcd-server etcdctl:etcd-client ;; esac
build
install_bins
exec /usr/local/bin/minidocker-net demo "$@"
