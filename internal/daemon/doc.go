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
// On Windows the same binary installs itself as a service (install,
// uninstall) and, when started by the service manager, runs under it; the
// service restarts on a non-zero exit, such as the self-update's 64.
package daemon
