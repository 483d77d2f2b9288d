#!/usr/bin/env bash
# The whole test suite: static checks, unit tests, and end-to-end tests that
# build real bridges, namespaces and rules, each inside its own throwaway
# host. Run as root on Debian: sudo scripts/test.sh [go test flags]
set -euo pipefail
. "$(dirname "$0")/setup.sh"
need_root
ensure_runtime
ensure_packages ss:iproute2 pgrep:procps dot:graphviz etcd:etcd-server etcdctl:etcd-client bridge:iproute2
build
cd "$REPO"
echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
echo "== go mod tidy changes nothing"
if ! tidy=$(go mod tidy -diff 2>&1); then
	echo "go mod tidy would change go.mod/go.sum:" >&2
	echo "$tidy" >&2
	exit 1
fi
echo "== Vagrantfile (no hypervisor here: syntax and vagrant validate)"
ensure_packages vagrant:vagrant
(dot=$(mktemp -d) && VAGRANT_DOTFILE_PATH="$dot" vagrant validate --ignore-provider && rm -rf "$dot")
echo "== tests"
go test -count=1 -timeout 20m "$@" ./...
echo "== end-to-end tests again, with the nftables firewall backend"
MINIDOCKER_NET_FIREWALL_BACKEND=nftables go test -count=1 -timeout 20m "$@" ./e2e/

# The side-by-side run against a real Docker engine (inside throwaway hosts):
# about four minutes; it fails on a behavioural mismatch. Skip it with
# MINIDOCKER_NET_SKIP_DOCKER=1.
if [ "${MINIDOCKER_NET_SKIP_DOCKER:-0}" != 1 ]; then
	echo "== compared with Docker"
	"$REPO/scripts/compare-with-docker.sh"
fi
