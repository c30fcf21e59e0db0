// Package embedded runs a single-machine NATS server with JetStream inside
// the calling process, provisioned with every stream, KV bucket and object
// store of the kanade protocol (package provision).
//
// The kanade-agent daemon uses it when no NATS URL is configured, so that one
// machine works on its own; tests, examples and other services use it as a
// throw-away backend.
//
// By default the server opens no network port: clients in the same process
// connect in process (Server.Connect, or nats.InProcessServer with
// Server.ConnectOptions), and ServeLocal adds a local socket for other
// processes of the machine, guarded by file permissions:
//
//	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Token: token})
//	if err != nil { ... }
//	defer srv.Close()
//	nc, err := srv.Connect()
//
// Options.Listen opens a TCP port as well. Options.Token, when set, is
// required from every client, in-process and local-socket ones included. A
// Listen address other than loopback is refused without a token
// (ErrInsecureListen): the agents of this server run scripts as root or
// SYSTEM, so an open port is remote code execution. The server has no TLS;
// a token sent over a network can be read by anyone on its path.
//
// The server's own log lines go to a *slog.Logger (warnings and errors by
// default). A fatal error of the server never exits the process: before the
// server is ready it makes Start fail, afterwards it is logged at error level.
package embedded
