package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen bounds sandbox and network names: a sandbox name is also a
// hostname candidate and a file name under /var/run/netns and /etc/netns.
const MaxNameLen = 64

// Docker's rule for container and network names (compiled on first use:
// at start-up it would cost every command). It also keeps names safe
// as file names and as arguments: no shell or iptables metacharacters, no
// leading dash, no "..".
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// ValidateName checks a sandbox, network or alias name.
func ValidateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("invalid %s name \"\": a name is required", kind)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("invalid %s name %q: longer than %d characters", kind, name, MaxNameLen)
	}
	if !nameRE().MatchString(name) {
		return fmt.Errorf("invalid %s name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", kind, name)
	}
	return nil
}

// ValidateNetworkName checks a network name as Docker takes them, more
// freely than a sandbox's: letters of any script, spaces and punctuation
// ("_net", "my net", "réseau"). A name is never handed to a shell, and a
// printed command quotes it; what it cannot hold is what would make it a
// path or an option: '/', a leading '-', control characters, "." or "..".
func ValidateNetworkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("invalid network name \"\": a name is required")
	case len(name) > MaxNameLen:
		return fmt.Errorf("invalid network name %q: longer than %d characters", name, MaxNameLen)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("invalid network name %q: control characters are not allowed", name)
	case strings.Contains(name, "/") || name == "." || name == "..":
		return fmt.Errorf("invalid network name %q: it cannot contain '/' or be . or ..", name)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("invalid network name %q: it cannot start with '-'", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("invalid network name %q: it cannot start or end with a space", name)
	}
	return nil
}

var hostnameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)
})

// ValidateHostname checks a --hostname value.
func ValidateHostname(h string) error {
	if len(h) > 64 || !hostnameRE().MatchString(h) {
		return fmt.Errorf("invalid hostname %q: letters, digits, '-' and '.', at most 64 characters", h)
	}
	return nil
}

// IDSeedEnv makes IDs reproducible: a command run with a seed hands out
// the same IDs (so the same veth names, MACs and hostnames) each time, so
// that what --dry-run printed with a seed is what the command then builds
// with it.
const IDSeedEnv = "MINIDOCKER_NET_ID_SEED"

var idCount atomic.Int64

// NewID returns 64 random hex digits, like Docker's IDs.
func NewID() string {
	if seed := os.Getenv(IDSeedEnv); seed != "" {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s:%d", seed, idCount.Add(1))))
		return hex.EncodeToString(sum[:])
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// vethName returns a free host-side veth name for an endpoint.
func vethName(epID string, taken func(string) bool) string {
	for i := 0; i+8 <= len(epID); i += 8 {
		if c := "mdnv" + epID[i:i+8]; !taken(c) {
			return c
		}
	}
	return "mdnv" + NewID()[:8]
}
