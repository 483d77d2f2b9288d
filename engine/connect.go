package engine

import (
	"fmt"
	"slices"

	"github.com/minidocker-net/minidocker-net/model"
	"github.com/minidocker-net/minidocker-net/nsnet"
	"github.com/minidocker-net/minidocker-net/plan"
	"github.com/minidocker-net/minidocker-net/store"
)

// ConnectRequest is `network connect`.
type ConnectRequest struct {
	Network    string
	Sandbox    string
	IP         string
	IP6        string // --ip6, on an IPv6 network
	Aliases    []string
	GwPriority int
}

// Connect is `network connect`.
func (e *Engine) Connect(req ConnectRequest) error {
	return e.mutate("network connect "+req.Network+" "+req.Sandbox, func(t *tx) error {
		sb, err := t.sandbox(req.Sandbox)
		if err != nil {
			return err
		}
		netName, err := t.networkName(req.Network)
		if err != nil {
			return err
		}
		if model.Predefined(netName) && netName != model.DefaultNetwork {
			return fmt.Errorf("cannot connect sandbox %s to network %s: the host and none networks are chosen when a sandbox is created", sb.Name, netName)
		}
		switch sb.Mode {
		case store.ModeHost:
			return fmt.Errorf("sandbox %s shares the host's network namespace and cannot be connected to any other network", sb.Name)
		case store.ModeNone:
			return fmt.Errorf("sandbox %s cannot be connected to multiple networks with one of the networks in private (none) mode", sb.Name)
		}
		n, err := t.network(netName)
		if err != nil {
			return err
		}
		oldGW, oldGW6 := gatewayOf(t.new, sb, false), gatewayOf(t.new, sb, true)
		ep, err := t.newEndpoint(sb, n, req.IP, req.IP6, req.Aliases, req.GwPriority)
		if err != nil {
			return err
		}
		served, had6 := model.DNSServed(t.new, sb), hasIPv6(sb)
		sb.Endpoints = append(sb.Endpoints, ep)
		t.setup = append(t.setup, endpointSteps(sb, ep, n)...)
		if gw, gwn, err := t.joinGateway(sb); err != nil {
			return err
		} else if gw != nil {
			t.setup = append(t.setup, endpointSteps(sb, gw, gwn)...)
		}
		if !had6 && hasIPv6(sb) {
			t.setup = append(t.setup, loopback6(sb))
		}
		if newGW := gatewayOf(t.new, sb, false); !sameGateway(oldGW, newGW) {
			t.setup = append(t.setup, &nsnet.DefaultRoute{Netns: sb.Name, To: newGW, From: oldGW})
			t.flushPorts(sb.Ports)
		}
		if newGW6 := gatewayOf(t.new, sb, true); !sameGateway(oldGW6, newGW6) {
			t.setup = append(t.setup, &nsnet.DefaultRoute{Netns: sb.Name, To: newGW6, From: oldGW6, IPv6: true})
		}
		if !served && model.DNSServed(t.new, sb) {
			t.setup = append(t.setup, t.dnsSteps(sb)...)
		}
		return t.syncEtc(sb.Name)
	})
}

func sameGateway(a, b *nsnet.Gateway) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Disconnect is `network disconnect`. A sandbox may leave its last
// network, running or not: it keeps its loopback, as on Docker.
func (e *Engine) Disconnect(network, ref string) error {
	return e.mutate("network disconnect "+network+" "+ref, func(t *tx) error {
		sb, err := t.sandbox(ref)
		if err != nil {
			return err
		}
		if sb.Mode == store.ModeHost {
			return fmt.Errorf("cannot disconnect sandbox %s from the host network: it was created in host network mode", sb.Name)
		}
		netName, err := t.networkName(network)
		if err != nil {
			return err
		}
		n := t.new.Networks[netName]
		ep := sb.Endpoint(netName)
		if n == nil || ep == nil {
			return fmt.Errorf("sandbox %s is not connected to network %s", sb.Name, network)
		}
		oldGW, oldGW6 := gatewayOf(t.new, sb, false), gatewayOf(t.new, sb, true)
		served, had6 := model.DNSServed(t.new, sb), hasIPv6(sb)
		sb.Endpoints = slices.DeleteFunc(sb.Endpoints, func(e *store.Endpoint) bool { return e.Network == netName })
		// Off its last overlay network, it leaves the gateway bridge too.
		gw := sb.Endpoint(GatewayBridgeNetwork)
		if gw != nil && !needsGateway(t.new, sb) && netName != GatewayBridgeNetwork {
			sb.Endpoints = slices.DeleteFunc(sb.Endpoints, func(e *store.Endpoint) bool { return e == gw })
		} else {
			gw = nil
		}
		if had6 && !hasIPv6(sb) {
			t.teardown = append(t.teardown, plan.Reverse{Inner: loopback6(sb)})
		}
		if served && !model.DNSServed(t.new, sb) {
			t.teardown = append(t.teardown, plan.Reversed(t.dnsSteps(sb))...)
		}
		if newGW := gatewayOf(t.new, sb, false); !sameGateway(oldGW, newGW) {
			t.teardown = append(t.teardown, &nsnet.DefaultRoute{Netns: sb.Name, To: newGW, From: oldGW})
			t.flushPorts(sb.Ports)
		}
		if newGW6 := gatewayOf(t.new, sb, true); !sameGateway(oldGW6, newGW6) {
			t.teardown = append(t.teardown, &nsnet.DefaultRoute{Netns: sb.Name, To: newGW6, From: oldGW6, IPv6: true})
		}
		t.teardown = append(t.teardown, plan.Reversed(endpointSteps(sb, ep, n))...)
		if gw != nil {
			t.teardown = append(t.teardown, plan.Reversed(endpointSteps(sb, gw, t.new.Networks[GatewayBridgeNetwork]))...)
		}
		return t.syncEtc(sb.Name)
	})
}
