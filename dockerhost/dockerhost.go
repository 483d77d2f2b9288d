// Package dockerhost starts a real Docker engine inside a throwaway host
// (see hostns), with its data in that host's tmpfs and a busybox image
// imported from Debian's busybox-static (no registry is reachable), so
// minidocker-net can be measured and compared against Docker on the same
// kernel without Docker touching the machine.
package dockerhost

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Image is the name of the imported busybox image.
const Image = "bbox"

// Socket is the engine's API socket inside the throwaway host.
const Socket = "/run/dockerd/docker.sock"

// Engine is a running dockerd.
type Engine struct {
	cmd     *exec.Cmd
	Version string
}

// Start runs dockerd (with extra daemon flags) and imports the image; it
// sets DOCKER_HOST for this process and its children. It must run inside
// a throwaway host.
func Start(flags ...string) (*Engine, error) {
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, errors.New("dockerd is not installed (apt-get install docker.io)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, errors.New("busybox is not installed (apt-get install busybox-static)")
	}
	_ = exec.Command("sh", "-c", "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup").Run()
	if err := os.MkdirAll("/run/dockerd", 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("dockerd", append([]string{"--data-root", "/run/dockerd/data", "--exec-root", "/run/dockerd/exec",
		"--pidfile", "/run/dockerd/pid", "-H", "unix://" + Socket}, flags...)...)
	logf, err := os.Create("/run/dockerd/log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	os.Setenv("DOCKER_HOST", "unix://"+Socket)
	e := &Engine{cmd: cmd}
	for i := 0; i < 150; i++ {
		if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output(); err == nil {
			e.Version = strings.TrimSpace(string(out))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if e.Version == "" {
		log, _ := os.ReadFile("/run/dockerd/log")
		e.Stop()
		return nil, fmt.Errorf("dockerd did not start: %s", lastLines(string(log), 4))
	}
	script := fmt.Sprintf(`rm -rf /run/bbox && mkdir -p /run/bbox/bin /run/bbox/etc && cp %s /run/bbox/bin/busybox &&
for a in sh nc ping ip sleep cat hostname nslookup timeout; do ln -s busybox /run/bbox/bin/$a; done &&
tar -C /run/bbox -c . | docker import - %s >/dev/null`, busybox, Image)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		e.Stop()
		return nil, fmt.Errorf("import the busybox image: %v: %s", err, out)
	}
	return e, nil
}

// Stop ends the engine (its containers die with the throwaway host).
func (e *Engine) Stop() {
	if e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
