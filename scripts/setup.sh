#!/usr/bin/env bash
# Shared by demo.sh, test.sh and bench.sh: install what is missing on a
# Debian machine, make sure a Go toolchain is there, build minidocker-net.
# Source it; it does not run anything on its own.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/bin/minidocker-net"
DAEMON="$REPO/bin/minidocker-netd" # the host's one long-running process, which minidocker-net starts from beside itself
GO_VERSION=$(awk '/^go /{print $2}' "$REPO/go.mod")
TOOLCHAIN=go1.26.8 # served by the Go module proxy as golang.org/toolchain

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "minidocker-net creates bridges, namespaces and iptables rules: run this as root (sudo $0)" >&2
		exit 1
	fi
}

# ensure_packages CMD:PACKAGE ... installs the packages whose command is missing.
ensure_packages() {
	local missing=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The tool's own needs, and what the lessons and the demo run inside sandboxes.
ensure_runtime() {
	ensure_packages ip:iproute2 iptables:iptables iptables-save:iptables ping:iputils-ping nc:netcat-openbsd \
		sysctl:procps nsenter:util-linux unshare:util-linux getent:libc-bin \
		conntrack:conntrack nft:nftables nslookup:bind9-dnsutils
}

go_ok() {
	command -v go >/dev/null 2>&1 || return 1
	local have
	have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	[ "$(printf '%s\n%s\n' "$GO_VERSION" "$have" | sort -V | head -1)" = "$GO_VERSION" ]
}

# ensure_go puts a Go toolchain of at least go.mod's version on PATH. A fresh
# Debian has none recent enough: take the official toolchain from the Go
# module proxy (the same archive GOTOOLCHAIN downloads).
ensure_go() {
	export PATH="/usr/local/go/bin:$PATH"
	go_ok && return 0
	local dir="/usr/local/lib/$TOOLCHAIN"
	if [ ! -x "$dir/bin/go" ]; then
		ensure_packages curl:curl unzip:unzip
		local arch proxy tmp
		arch=$(dpkg --print-architecture)
		proxy=${GOPROXY:-https://proxy.golang.org}
		proxy=${proxy%%,*}
		tmp=$(mktemp -d)
		echo "fetching Go $TOOLCHAIN from $proxy"
		curl -fsSL -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-$TOOLCHAIN.linux-$arch.zip"
		unzip -q "$tmp/go.zip" -d "$tmp"
		mkdir -p "$(dirname "$dir")"
		mv "$tmp"/golang.org/toolchain@*/ "$dir"
		rm -rf "$tmp"
	fi
	export PATH="$dir/bin:$PATH"
	go_ok || { echo "no usable Go toolchain (need $GO_VERSION)" >&2; exit 1; }
}

build() {
	ensure_go
	# Static, and without urfave/cli's man-page generator: 0.6 ms less per start.
	(cd "$REPO" && CGO_ENABLED=0 go build -tags urfave_cli_no_docs -trimpath -o "$BIN" ./cmd/minidocker-net &&
		CGO_ENABLED=0 go build -trimpath -o "$DAEMON" ./cmd/minidocker-netd)
}

# install puts both binaries on PATH, side by side.
install_bins() {
	install -m 0755 "$BIN" /usr/local/bin/minidocker-net
	install -m 0755 "$DAEMON" /usr/local/bin/minidocker-netd
}
