package trace

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const timeout = time.Second

func deadline() time.Time { return time.Now().Add(timeout) }

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// pingOnce sends one ICMP echo with the system's ping, as a user would,
// of one family (4 or 6).
func pingOnce(addr, family string) (bool, string) {
	out, err := exec.Command("ping", "-"+family, "-c1", "-W1", addr).CombinedOutput()
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "bytes from") {
				return true, "echo reply: " + strings.TrimSpace(l)
			}
		}
		return true, "echo reply"
	}
	msg := strings.TrimSpace(string(out))
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = strings.TrimSpace(msg[i+1:])
	}
	return false, "no echo reply (" + msg + ")"
}
