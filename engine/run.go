package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/minidocker-net/minidocker-net/driver"
	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/portspec"
	"github.com/minidocker-net/minidocker-net/store"
)

// RunRequest is `run`. With Detach and a command, the command starts as
// the last step of the same transaction; otherwise the caller runs it on
// its terminal once the sandbox exists.
type RunRequest struct {
	Name       string
	Network    string // "" joins the default network
	IP         string
	IP6        string // --ip6, on an IPv6 network
	MAC        string
	Aliases    []string
	Hostname   string
	AddHosts   []string // NAME:IP or NAME:host-gateway
	GwPriority int
	Ports      []string
	Expose     []string // PORT[-END][/PROTO], published by PublishAll
	PublishAll bool     // -P
	Env        []string // KEY=VALUE, or KEY to take this process's value
	Labels     []string // KEY=VALUE
	DNS        []string // --dns servers
	DNSSearch  []string // --dns-search domains
	DNSOptions []string // --dns-option options
	Cmd        []string
	Detach     bool
	AutoRemove bool
	// Supervisor, for run --rm: the command line of the process that
	// runs Cmd on the host and removes the sandbox when it ends; the
	// sandbox's ID, "--" and Cmd follow it. Attached (without -d), it is
	// started on this terminal as the transaction's last step, and
	// Attached is the started process: the caller waits for it.
	Supervisor []string
	Attached   *exec.Cmd
}

// CreateSandbox is `run`: it builds the sandbox (and, detached, starts
// its command).
func (e *Engine) CreateSandbox(req RunRequest) (*store.Sandbox, error) {
	var sb *store.Sandbox
	title := "run " + req.Name
	err := e.mutate(title, func(t *tx) error {
		var err error
		sb, err = t.createSandbox(req)
		return err
	})
	return sb, err
}

// parseEnv reads -e values as Docker does: KEY=VALUE, or KEY alone for
// this process's value of KEY (left out when it has none).
func parseEnv(raw []string) ([]string, error) {
	var out []string
	for _, e := range raw {
		k, _, hasValue := strings.Cut(e, "=")
		if k == "" || strings.ContainsAny(k, " \x00") || strings.Contains(e, "\x00") {
			return nil, fmt.Errorf("invalid environment variable %q: expected KEY=VALUE", e)
		}
		if !hasValue {
			v, ok := os.LookupEnv(k)
			if !ok {
				continue
			}
			e = k + "=" + v
		}
		out = append(out, e)
	}
	return out, nil
}

func parseMAC(s string) (string, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return "", fmt.Errorf("%s is not a valid mac address", s)
	}
	if m[0]&1 == 1 {
		return "", fmt.Errorf("invalid MAC address %s: a multicast address cannot be an interface's", s)
	}
	return m.String(), nil
}

// exposedSpecs are the -P mappings: every --expose port not already
// published by -p, each on an ephemeral host port.
func exposedSpecs(exposed []string, published []portspec.Spec) ([]portspec.Spec, []string, error) {
	var specs []portspec.Spec
	var keys []string
	for _, x := range exposed {
		sp, err := portspec.Parse(x)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid --expose %q: %w", x, err)
		}
		if sp.HostIP.IsValid() || sp.HostPort != 0 {
			return nil, nil, fmt.Errorf("invalid --expose %q: a container port (PORT[-END][/PROTO]) only", x)
		}
		keys = append(keys, fmt.Sprintf("%s/%s", rangeText(sp.Port, sp.PortEnd), sp.Proto))
		covered := false
		for _, p := range published {
			covered = covered || p.Proto == sp.Proto && p.Port <= sp.Port && p.PortEnd >= sp.PortEnd
		}
		if !covered {
			specs = append(specs, sp)
		}
	}
	return specs, keys, nil
}

func rangeText(a, b int) string {
	if a == b {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

func (t *tx) createSandbox(req RunRequest) (*store.Sandbox, error) {
	name := req.Name
	if name == "" {
		name = t.generatedName()
	}
	if err := ValidateName("sandbox", name); err != nil {
		return nil, err
	}
	if o, ok := t.new.Sandboxes[name]; ok {
		return nil, fmt.Errorf("the sandbox name %q is already in use by sandbox %s: remove it ('minidocker-net rm %s') to reuse the name", name, o.ID[:12], name)
	}
	id := NewID()
	sb := &store.Sandbox{ID: id, Name: name, Hostname: id[:12], Created: time.Now().UTC(), Cmd: req.Cmd, Detached: req.Detach, AutoRemove: req.AutoRemove}
	if req.Hostname != "" {
		if err := ValidateHostname(req.Hostname); err != nil {
			return nil, err
		}
		sb.Hostname = req.Hostname
	}
	var err error
	if sb.Env, err = parseEnv(req.Env); err != nil {
		return nil, err
	}
	for _, l := range req.Labels {
		k, v, err := parseKV("label", l)
		if err != nil {
			return nil, err
		}
		if sb.Labels == nil {
			sb.Labels = map[string]string{}
		}
		sb.Labels[k] = v
	}
	for _, d := range req.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("%s is not an ip address", d)
		}
		sb.DNS = append(sb.DNS, a.String())
	}
	for _, d := range req.DNSSearch {
		if d != "." {
			if err := ValidateHostname(strings.TrimSuffix(d, ".")); err != nil {
				return nil, fmt.Errorf("invalid --dns-search %q: %w", d, err)
			}
		}
		sb.DNSSearch = append(sb.DNSSearch, d)
	}
	for _, o := range req.DNSOptions {
		if o == "" || strings.ContainsAny(o, " \t\n") {
			return nil, fmt.Errorf("invalid --dns-option %q", o)
		}
		sb.DNSOptions = append(sb.DNSOptions, o)
	}
	usesHostGateway := false
	for _, h := range req.AddHosts {
		he, err := parseAddHost(h)
		if err != nil {
			return nil, err
		}
		usesHostGateway = usesHostGateway || !he.IP.IsValid()
		sb.ExtraHosts = append(sb.ExtraHosts, he)
	}
	specs, err := parseSpecs(req.Ports, portspec.Parse)
	if err != nil {
		return nil, err
	}
	all, exposed, err := exposedSpecs(req.Expose, specs)
	if err != nil {
		return nil, err
	}
	sb.Exposed = exposed
	if req.PublishAll {
		specs = append(specs, all...)
	}
	mac := ""
	if req.MAC != "" {
		if mac, err = parseMAC(req.MAC); err != nil {
			return nil, err
		}
	}
	netName := req.Network
	if netName == "" {
		netName = model.DefaultNetwork
	}
	if netName, err = t.networkName(netName); err != nil {
		return nil, err
	}
	switch netName {
	case model.HostNetwork:
		sb.Mode = store.ModeHost
		if req.IP != "" || req.IP6 != "" || len(req.Aliases) > 0 || mac != "" {
			return nil, errors.New("--ip, --ip6, --mac-address and --network-alias need a network: a sandbox on the host network has the host's addresses")
		}
		if len(specs) > 0 {
			return nil, errors.New("published ports are discarded when using host network mode: a program in the sandbox listens on the host's ports directly")
		}
	case model.NoneNetwork:
		sb.Mode = store.ModeNone
		if req.IP != "" || req.IP6 != "" || len(req.Aliases) > 0 || len(specs) > 0 || mac != "" {
			return nil, errors.New("--ip, --ip6, --mac-address, --network-alias and -p need a network: a sandbox on network none has loopback only")
		}
	default:
		sb.Mode = store.ModeBridge
	}
	if sb.Mode != store.ModeHost && t.e.kernel.NetnsExists(name) {
		return nil, fmt.Errorf("a network namespace named %s already exists and is not a minidocker-net sandbox: choose another name", name)
	}
	if usesHostGateway && sb.Mode != store.ModeHost {
		// host-gateway is the default bridge's address: it must exist.
		if err := t.ensureDefault(); err != nil {
			return nil, err
		}
	}
	if sb.Mode == store.ModeBridge {
		n, err := t.network(netName)
		if err != nil {
			return nil, err
		}
		ep, err := t.newEndpoint(sb, n, req.IP, req.IP6, req.Aliases, req.GwPriority)
		if err != nil {
			return nil, err
		}
		if mac != "" && n.Driver == driver.Ipvlan {
			return nil, errors.New("ipvlan interfaces do not support custom mac address assignment")
		}
		if mac != "" {
			ep.MAC = mac
		}
		sb.Endpoints = append(sb.Endpoints, ep)
		if _, _, err := t.joinGateway(sb); err != nil {
			return nil, err
		}
	}
	t.new.Sandboxes[name] = sb
	// Ports answer on the gateway endpoint only: on internal networks
	// there is none, and -p publishes nothing, as on Docker; on macvlan
	// and ipvlan ones Docker warns, and so do we.
	if len(specs) > 0 && model.ExternalAccess(t.new, sb) && !model.PortsServed(t.new, sb) {
		t.e.warn("%s", noPortMappings(t.new, sb))
	} else if len(specs) > 0 && model.ExternalAccess(t.new, sb) {
		if err := t.publish(sb, specs); err != nil {
			return nil, err
		}
	}
	steps, err := t.sandboxSteps(t.new, sb)
	if err != nil {
		return nil, err
	}
	t.setup = append(t.setup, steps...)
	if req.Detach && len(req.Cmd) > 0 {
		if err := t.startDetached(sb, req); err != nil {
			return nil, err
		}
	}
	if !req.Detach && req.AutoRemove && req.Attached != nil {
		// Under the transaction's lock, like run -d's program: once the
		// sandbox exists, so does what removes it, whatever happens to
		// this process afterwards.
		line := append(append(append([]string(nil), req.Supervisor...), sb.ID, "--"), req.Cmd...)
		req.Attached.Path, req.Attached.Args = line[0], line
		t.final = append(t.final, &startAttached{Cmd: req.Attached, Show: shellJoin(line)})
	}
	return sb, nil
}

// startDetached plans run -d's command as the transaction's last step,
// taken under its lock: no command sees the sandbox without it.
func (t *tx) startDetached(sb *store.Sandbox, req RunRequest) error {
	cmd, host := req.Cmd, false
	if req.AutoRemove {
		cmd, host = append(append(append([]string(nil), req.Supervisor...), sb.ID, "--"), req.Cmd...), true
	}
	start, err := t.e.startStep(sb, cmd, host)
	if err != nil {
		return err
	}
	if sb.Mode == store.ModeHost && !req.AutoRemove {
		// A host-mode sandbox's program is known by its pid only.
		start.Started = func(pid int, st uint64) { sb.Pid, sb.PidStart = pid, st }
		t.learns = true
	}
	t.final = append(t.final, start)
	return nil
}
