// Package netwatch tells when the machine's network configuration changes,
// for the local scheduler's `on: [network_change]` trigger.
//
// Run calls its callback each time the network state it follows differs
// from the last one it saw. That state is:
//
//   - every network interface, by index and name, with whether it is up
//     (administratively up, and on Linux also running / lower-up; on
//     Windows its operational status);
//   - every unicast IP address (IPv4 and IPv6) of each interface, with
//     its prefix length;
//   - every default route (destination prefix length 0) with its family,
//     table, gateway, output interface and metric (on Windows: each
//     interface's default gateway addresses).
//
// So a link going up or down, an address being added or removed, an
// interface appearing or vanishing and the default route changing count;
// an address's lifetime being refreshed (DHCP renew, IPv6 router
// advertisements), a duplicate address detection finishing, a route other
// than a default one changing, or traffic counters do not. The state is
// read when Run starts (that first reading is not a change) and again
// after the operating system announces a possible change; nothing is
// polled, so an idle machine costs nothing (one goroutine parked on the
// netpoller on Linux, on a channel on Windows).
//
// A burst of changes (a Wi-Fi roam, a VPN coming up) calls the callback
// once per differing state seen, possibly several times: the caller
// debounces (the scheduler fires network_change once the network was quiet
// for 8 s).
//
// Linux: a NETLINK_ROUTE socket subscribed to link, IPv4/IPv6 address and
// IPv4/IPv6 route notifications; the state is read with netlink dumps.
// The socket is the network namespace's of the thread calling Run. Windows:
// NotifyIpInterfaceChange, NotifyUnicastIpAddressChange and
// NotifyRouteChange2 (cancelled with CancelMibChangeNotify2 when Run
// returns); the system's callback only signals a channel, and the state is
// read with GetAdaptersAddresses. Other systems: Run returns
// ErrUnsupported.
//
// Upstream (kanade's Windows agent) blocks in NotifyAddrChange, which
// announces IPv4 address table changes only; this package follows links,
// IPv6 and default routes too.
package netwatch
