// Package logrotate is a concurrency-safe io.Writer that appends to a log
// file and rotates it by size: agent.log becomes agent.log.1, agent.log.1
// becomes agent.log.2, and so on, and the oldest file beyond MaxFiles is
// removed.
//
// Rotation never loses a write: when a rename fails (on Windows a file that
// another process holds open cannot be renamed) the writer keeps appending to
// the current file and tries again after another MaxSize bytes.
package logrotate
