// Package nsnet owns network namespaces ("sandboxes"), the veth pairs into
// them, and addressing and routes inside them. Work inside a namespace goes
// through netlink handles bound to it; the only thread that ever switches
// namespace is a dedicated one that is thrown away afterwards.
package nsnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/minidocker-net/minidocker-net/plan"
)

// RunDir is where iproute2 keeps named namespaces: a sandbox is visible to
// `ip netns list` and usable with `ip netns exec`.
const RunDir = "/var/run/netns"

// Marker is set as the alias of lo in every namespace minidocker-net
// creates, so reset can tell its namespaces from others without records.
const Marker = "minidocker-net"

// Path returns the bind-mount path of a named namespace.
func Path(name string) string { return filepath.Join(RunDir, name) }

// Exists reports whether a named namespace is mounted.
func Exists(name string) bool {
	var st unix.Statfs_t
	return unix.Statfs(Path(name), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// Inode returns the namespace's inode number, which identifies it in
// /proc/PID/ns/net of the processes inside.
func Inode(name string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(Path(name), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// ensureRunDir makes /var/run/netns a shared mount point as iproute2 does,
// so namespace mounts propagate into mount namespaces created later.
func ensureRunDir() error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("mount --make-rshared %s: %w", RunDir, err)
	}
	if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --bind %s %s: %w", RunDir, RunDir, err)
	}
	if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --make-rshared %s: %w", RunDir, err)
	}
	return nil
}

// ReleaseRunDir undoes ensureRunDir once no namespace is left: it
// unmounts the directory's bind mount of itself and removes it. A
// directory with namespaces in it, or a mount of another file system,
// stays.
func ReleaseRunDir() error {
	if entries, err := os.ReadDir(RunDir); err != nil || len(entries) > 0 {
		return nil
	}
	var dir, parent unix.Stat_t
	if unix.Stat(RunDir, &dir) != nil || unix.Stat(filepath.Dir(RunDir), &parent) != nil || dir.Dev != parent.Dev {
		return nil
	}
	if err := unix.Unmount(RunDir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("umount %s: %w", RunDir, err)
	}
	if err := os.Remove(RunDir); err != nil {
		return fmt.Errorf("rmdir %s: %w", RunDir, err)
	}
	return nil
}

// createNamed makes a new namespace and bind-mounts it at Path(name). The
// namespace switch happens on a locked thread that exits with its
// goroutine, so no other goroutine ever runs in the wrong namespace.
func createNamed(name string) error {
	if err := ensureRunDir(); err != nil {
		return err
	}
	path := Path(name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare net: %w", err)
			return
		}
		// Sandboxes are IPv4-only, as Docker's are without --ipv6: no
		// link-local addresses, router solicitations or DAD. /proc/sys/net
		// shows the namespace of the thread that opens it.
		for _, key := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+key+"/disable_ipv6", []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
				errc <- fmt.Errorf("disable IPv6: %w", err)
				return
			}
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("mount %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func deleteNamed(name string) error {
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("umount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// Handle is a netlink handle bound to a named namespace.
type Handle struct {
	*netlink.Handle
	ns netns.NsHandle
}

// Close releases the handle and the namespace file descriptor.
func (h *Handle) Close() {
	h.Handle.Close()
	h.ns.Close()
}

// Open returns a netlink handle bound to a named namespace.
func Open(name string) (*Handle, error) {
	ns, err := netns.GetFromPath(Path(name))
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in namespace %s: %w", name, err)
	}
	return &Handle{Handle: h, ns: ns}, nil
}

// handle returns the plan's cached handle for a namespace, or nil if the
// namespace does not exist.
func handle(ctx *plan.Context, name string) (*Handle, error) {
	if !Exists(name) {
		return nil, nil
	}
	return plan.Cached(ctx, "nsnet.ns."+name, func() (*Handle, error) { return Open(name) })
}

// Netns creates a named namespace with lo up and marked as ours.
type Netns struct {
	Name string `json:"name"`
}

func init() {
	plan.Register("netns", func() plan.Step { return &Netns{} })
	plan.Register("veth", func() plan.Step { return &Veth{} })
	plan.Register("veth-release", func() plan.Step { return &Release{} })
	plan.Register("ns-addr", func() plan.Step { return &Addr{} })
	plan.Register("ns-up", func() plan.Step { return &Up{} })
	plan.Register("ns-route", func() plan.Step { return &DefaultRoute{} })
}

func (s *Netns) Kind() string { return "netns" }
func (s *Netns) Commands() []string {
	return []string{
		"ip netns add " + s.Name,
		"ip netns exec " + s.Name + " sysctl -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
		"ip -n " + s.Name + " link set lo up alias " + Marker,
	}
}
func (s *Netns) UndoCommands() []string { return []string{"ip netns del " + s.Name} }

// Satisfied: the namespace is mounted, its lo up and marked as ours.
func (s *Netns) Satisfied(ctx *plan.Context) (bool, error) {
	h, err := handle(ctx, s.Name)
	if err != nil || h == nil {
		return false, err
	}
	lo, err := h.LinkByName("lo")
	return err == nil && lo.Attrs().Alias == Marker && lo.Attrs().Flags&net.FlagUp != 0, nil
}

func (s *Netns) Apply(ctx *plan.Context) error {
	if kept, ok := plan.Lookup[*heldNS](ctx, heldKey(s.Name)); ok && !Exists(s.Name) {
		// Rolling back its deletion: the same namespace, with its
		// processes and interfaces, gets its name back.
		if err := kept.remount(Path(s.Name)); err != nil {
			return fmt.Errorf("ip netns attach %s: %w", s.Name, err)
		}
		ctx.Forget(heldKey(s.Name))
	}
	if !Exists(s.Name) {
		if err := createNamed(s.Name); err != nil {
			return fmt.Errorf("ip netns add %s: %w", s.Name, err)
		}
	}
	h, err := handle(ctx, s.Name)
	if err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetAlias(lo, Marker)
	}
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("ip -n %s link set lo up: %w", s.Name, err)
	}
	return nil
}

func (s *Netns) Undo(ctx *plan.Context) error {
	ctx.Forget("nsnet.ns." + s.Name) // the handle is closed with the context
	// Hold the namespace until the plan ends, so that a rollback can give
	// back this one rather than make an empty new one.
	if f, err := os.Open(Path(s.Name)); err == nil {
		plan.Seed(ctx, heldKey(s.Name), &heldNS{f})
	}
	if err := deleteNamed(s.Name); err != nil {
		return fmt.Errorf("ip netns del %s: %w", s.Name, err)
	}
	return nil
}

func heldKey(name string) string { return "nsnet.held." + name }

// heldNS is a deleted namespace kept open by the plan.
type heldNS struct{ f *os.File }

func (h *heldNS) Close() { h.f.Close() }

func (h *heldNS) remount(path string) error {
	if err := ensureRunDir(); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", h.f.Fd()), path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// IsOurs reports whether a named namespace carries our marker.
func IsOurs(name string) bool {
	h, err := Open(name)
	if err != nil {
		return false
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	return err == nil && lo.Attrs().Alias == Marker
}

// List returns the names of every namespace under RunDir.
func List() ([]string, error) {
	entries, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if Exists(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Within runs fn on a thread switched into the namespace at path (a
// sandbox's Path, or /proc/PID/ns/net): a socket opened there stays
// there, served from any thread. The thread is switched back before it is
// reused; one that cannot switch back stays locked and dies with its
// goroutine.
func Within(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// whileDying retries a change the kernel refuses with errno for up to
// 2 s: a deleted namespace is destroyed in the background, and until then
// what it holds still counts (its VXLAN device's VNI on the host's port,
// the far end of its veths in a sandbox, a macvlan port's MAC on the
// parent). What is really there keeps refusing.
func whileDying(errno unix.Errno, change func() error) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = change(); !errors.Is(err, errno) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}
