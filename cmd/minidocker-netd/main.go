// Command minidocker-netd is the host's one long-running process: the
// embedded DNS at 127.0.0.11 in every sandbox on a user-defined network,
// and, on a host in a cluster, the cluster agent (the host's lease, the
// watch of every host's endpoints, the overlay tunnels' entries) and the
// commands' way to the cluster store. minidocker-net starts it on demand,
// from beside itself, as "minidocker-netd __resolver LIB RUN" (found by
// that name); it is not meant to be run by hand.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/minidocker-net/minidocker-net/hostd"
	"github.com/minidocker-net/minidocker-net/resolver"
	"github.com/minidocker-net/minidocker-net/store"
)

// The main goroutine keeps the main thread: sockets are opened inside
// sandboxes' namespaces on locked threads that are thrown away after.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) != 4 || os.Args[1] != hostd.Command {
		fmt.Fprintln(os.Stderr, "usage: "+hostd.Binary+" "+hostd.Command+" LIB RUN (minidocker-net starts it)")
		os.Exit(2)
	}
	if err := resolver.Run(store.Paths{Lib: os.Args[2], Run: os.Args[3]}); err != nil {
		fmt.Fprintln(os.Stderr, hostd.Binary+": "+err.Error())
		os.Exit(1)
	}
}
