// Package hostns makes throwaway hosts: this binary re-executed in new
// network, mount, PID and UTS namespaces, with private /run (so
// /var/run/netns), /etc/netns, /proc, /sys and resolv.conf. Whatever runs
// inside builds bridges, namespaces and rules that vanish with it, and the
// machine's own interfaces and iptables are never touched. The end-to-end
// tests and the demo run in such hosts.
package hostns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// InitCommand is the hidden command that becomes the host's first process.
const InitCommand = "__throwaway-host"

// StateDir is where minidocker-net keeps its state inside a throwaway host
// (a private tmpfs, like everything under /run there).
const StateDir = "/run/minidocker-net-throwaway"

// Hostname is the throwaway host's hostname.
const Hostname = "throwaway-host"

// Command returns a command that runs args (or, without args, waits until
// its stdin closes) as the first process of a new throwaway host.
func Command(self string, args ...string) *exec.Cmd {
	cmd := exec.Command(self, append([]string{InitCommand, "--"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// Init is the first process of a throwaway host: it prepares the private
// mounts and the loopback, then runs the command and reaps every orphan
// until the command ends (or, without a command, until stdin closes). Its
// exit ends every process of the host, and with them the host itself.
func Init(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	// Only Command's clone flags make a throwaway host. Run any other way,
	// the mounts below would land on the real machine: refuse.
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "throwaway host: not the first process of a new PID namespace; start it with hostns.Command (minidocker-net demo does)")
		return 125
	}
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "throwaway host: "+err.Error())
		return 125
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stdout, "ready")
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
		reap(-1)
		return 0
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "throwaway host: "+err.Error())
		return 127
	}
	env := append(os.Environ(), "MINIDOCKER_NET_STATE_DIR="+StateDir, "MINIDOCKER_NET_THROWAWAY=1")
	p, err := os.StartProcess(path, args, &os.ProcAttr{Env: env, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "throwaway host: "+err.Error())
		return 126
	}
	return reap(p.Pid)
}

// reap waits for every child; it returns the exit status of pid once that
// one ends (pid -1: never returns while children exist).
func reap(pid int) int {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			if pid == -1 {
				// No children now, but processes entered from outside
				// (nsenter) are reparented here when their parent ends:
				// look again, or their zombies would stay.
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return 125
		}
		if got == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}

func setup() error {
	mounts := []struct {
		what, where, fstype string
		flags               uintptr
	}{
		{"", "/", "", unix.MS_REC | unix.MS_PRIVATE},
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV},
	}
	for _, m := range mounts {
		if err := unix.Mount(m.what, m.where, m.fstype, m.flags, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.where, err)
		}
	}
	// /sys lists the interfaces of the namespace that mounted it.
	_ = unix.Unmount("/sys", unix.MNT_DETACH)
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /sys: %w", err)
	}
	if err := privateEtc(); err != nil {
		return err
	}
	if err := privateResolvConf(); err != nil {
		return err
	}
	if err := kernelDefaults(); err != nil {
		return err
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("ip link set lo up: %w", err)
	}
	return unix.Sethostname([]byte(Hostname))
}

// privateEtc gives the host a private /etc/netns (iproute2's place for a
// namespace's /etc files). With overlayfs, /etc becomes a copy-on-write
// view whose changes live in /run's tmpfs, so even the directory's mount
// point never touches the machine; without it, an empty /etc/netns is the
// one trace a throwaway host can leave.
func privateEtc() error {
	for _, d := range []string{"/run/etc-upper", "/run/etc-work"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Without overlayfs the mkdir below lands on the machine's /etc.
	_ = unix.Mount("overlay", "/etc", "overlay", 0, "lowerdir=/etc,upperdir=/run/etc-upper,workdir=/run/etc-work")
	if err := os.MkdirAll("/etc/netns", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/etc/netns", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount /etc/netns: %w", err)
	}
	return nil
}

// defaults are the kernel's own values of the IPv4 and IPv6 settings
// minidocker-net and its tests depend on. A new network namespace may copy
// the machine's (ip_forward is 1 wherever Docker runs): a throwaway host
// sets them, so that what runs inside behaves the same on every machine.
var defaults = map[string]string{
	"net/ipv4/ip_forward":                  "0",
	"net/ipv4/conf/all/forwarding":         "0",
	"net/ipv4/conf/default/forwarding":     "0",
	"net/ipv4/conf/all/route_localnet":     "0",
	"net/ipv4/conf/default/route_localnet": "0",
	"net/ipv4/conf/all/rp_filter":          "0",
	"net/ipv4/conf/default/rp_filter":      "0",
	"net/ipv4/conf/all/accept_local":       "0",
	"net/ipv4/conf/default/accept_local":   "0",
	"net/ipv4/conf/all/arp_ignore":         "0",
	"net/ipv4/conf/default/arp_ignore":     "0",
	"net/ipv6/conf/all/forwarding":         "0",
	"net/ipv6/conf/default/forwarding":     "0",
	"net/ipv6/conf/all/disable_ipv6":       "0",
	"net/ipv6/conf/default/disable_ipv6":   "0",
}

func kernelDefaults() error {
	for key, v := range defaults {
		if err := os.WriteFile("/proc/sys/"+key, []byte(v), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), v, err)
		}
	}
	return nil
}

// ResolvConf is the throwaway host's resolver configuration: no nameserver,
// so nothing inside ever sends a query to a real server.
const ResolvConf = "# throwaway host: no nameserver, so no query leaves it\n"

func privateResolvConf() error {
	const own = "/run/throwaway-resolv.conf"
	if err := os.WriteFile(own, []byte(ResolvConf), 0o644); err != nil {
		return err
	}
	if link, err := os.Readlink("/etc/resolv.conf"); err == nil {
		if !filepath.IsAbs(link) {
			link = filepath.Join("/etc", link)
		}
		if strings.HasPrefix(filepath.Clean(link), "/run/") {
			// A link into the machine's /run, hidden now by our tmpfs.
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				return err
			}
			return os.WriteFile(link, []byte(ResolvConf), 0o644)
		}
	}
	if err := unix.Mount(own, "/etc/resolv.conf", "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind resolv.conf: %w", err)
	}
	return nil
}
