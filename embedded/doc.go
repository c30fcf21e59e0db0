// Package embedded runs a single-machine NATS server with JetStream inside
// the calling process, provisioned with every stream, KV bucket and object
// store of the kanade protocol (package provision).
//
// The kanade-agent daemon uses it when no NATS URL is configured, so that one
// machine works on its own; tests, examples and other services use it as a
// throw-away backend:
//
//	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Listen: "127.0.0.1:-1"})
//	if err != nil { ... }
//	defer srv.Close()
//	nc, err := nats.Connect(srv.ClientURL())
//
// The server has no authentication and no TLS. It listens on 127.0.0.1 by
// default; listening on another address exposes an open server to that
// network, which is the caller's decision.
//
// The server's own log lines go to a *slog.Logger (warnings and errors by
// default). A fatal error of the server never exits the process: before the
// server is ready it makes Start fail, afterwards it is logged at error level.
package embedded
