package nsnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// EtcDir holds a sandbox's hosts, resolv.conf and hostname, which
// `ip netns exec` bind-mounts over /etc, and so does Enter.
const EtcDir = "/etc/netns"

// EnterCommand is the hidden command that runs a program inside a sandbox.
const EnterCommand = "__enter"

// EnterArgs returns the arguments that make this binary run cmd inside the
// named sandbox with the given hostname; lock is the state lock, taken
// shared while joining the namespace.
func EnterArgs(name, hostname, lock string, cmd []string) []string {
	return append([]string{EnterCommand, name, hostname, lock, "--"}, cmd...)
}

// Enter runs in a freshly started process (see EnterArgs): it joins the
// sandbox's network namespace, takes a private mount and UTS namespace,
// binds the sandbox's /etc files as `ip netns exec` does, sets the hostname
// and executes the program. It returns only on error.
func Enter(args []string) error {
	if len(args) < 5 || args[3] != "--" {
		return errors.New("usage: " + EnterCommand + " NAME HOSTNAME LOCK -- CMD [ARG...]")
	}
	name, hostname, lock, cmd := args[0], args[1], args[2], args[4:]
	path, err := exec.LookPath(cmd[0])
	if err != nil {
		return fmt.Errorf("%s: executable file not found in $PATH", cmd[0])
	}
	runtime.LockOSThread() // the process image is replaced from this thread
	if err := join(name, lock); err != nil {
		return err
	}
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("unshare mount and uts: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	if err := bindEtc(name); err != nil {
		return err
	}
	// /sys shows the interfaces of the namespace that mounted it.
	if unix.Unmount("/sys", unix.MNT_DETACH) == nil {
		_ = unix.Mount(name, "/sys", "sysfs", 0, "")
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname %s: %w", hostname, err)
	}
	return syscall.Exec(path, cmd, os.Environ())
}

// join enters the sandbox's network namespace under the shared state
// lock: a command that removes the sandbox (and kills what runs in it)
// either finished before, and then the namespace is gone, or starts after,
// and then finds this process in it.
func join(name, lock string) error {
	if lock != "" {
		if lf, err := unix.Open(lock, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			defer unix.Close(lf)
			for {
				if err = unix.Flock(lf, unix.LOCK_SH); err != unix.EINTR {
					break
				}
			}
			if err != nil {
				return fmt.Errorf("lock %s: %w", lock, err)
			}
		}
	}
	if !Exists(name) {
		return fmt.Errorf("No such sandbox: %s", name)
	}
	fd, err := unix.Open(Path(name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", name, err)
	}
	return nil
}

func bindEtc(name string) error {
	dir := filepath.Join(EtcDir, name)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join("/etc", e.Name())
		if err := unix.Mount(src, dst, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", src, dst, err)
		}
	}
	return nil
}
