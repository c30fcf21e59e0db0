// Package daemon is the kanade-agent command line: everything the binary
// does except calling os.Exit, so that tests run it in process.
//
// Main parses the command and its flags, merges them with the environment
// and an optional TOML config file (flag > environment > file > default),
// sets up logging to the console and to a size-rotated <data-dir>/logs/agent.log,
// and runs the agent until SIGINT or SIGTERM. Without a NATS URL it first
// starts an embedded single-machine NATS server (package embedded) with its
// store under <data-dir>/nats, and closes it after the agent has stopped.
//
// The embedded server is secure by default: it opens no TCP port (the
// agent connects in process) unless --embedded-listen asks for one, and it
// requires from every client a token generated at the first start and kept
// in <data-dir>/embedded-nats.json (LocalConn; mode 0600, on Windows the
// data directory's SYSTEM and Administrators ACL). The local socket
// <data-dir>/nats.sock (mode 0600) lets the kanade CLI of the same user
// reach it; the file names the socket and the TCP URL, if any.
//
// Secrets stay out of logs and command lines: URLs are logged without their
// user information, the NATS token can come from a file (--nats-token-file)
// or, on Windows, from the registry value HKLM\SOFTWARE\kanade\agent\NatsToken
// (ahead of KANADE_NATS_TOKEN, as upstream kanade), and install refuses to
// put --nats-token or --nats-password on a service's command line.
//
// On Windows the same binary installs itself as a service (install,
// uninstall) and, when started by the service manager, runs under it; the
// service restarts on a non-zero exit, such as the self-update's 64.
// The service accepts session change notifications and hands logon,
// logoff, lock and unlock to the session Source (package
// internal/session), which relays them to the local scheduler and, with
// --session-events, to the timeline.
//
// kanade-agent --session-agent is the in-session idle helper the agent
// launches (package internal/session): Main runs it before reading any
// flag, config file or data directory, and it connects nowhere. The agent
// runs it, and records active and idle events, unless --user-presence=false.
package daemon
