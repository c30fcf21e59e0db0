//go:build windows

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/kanade/kanade-agent/internal/session"
)

// Service recovery: restart after any non-zero exit (the self-update exits
// 64), the last action repeating for later failures; the failure count
// resets after a day without failure.
var recoveryActions = []mgr.RecoveryAction{
	{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
}

const recoveryResetSecs = 24 * 60 * 60

// stopTimeout bounds the wait for the service to stop in uninstall.
const stopTimeout = 60 * time.Second

func isWindowsService() bool {
	ok, err := svc.IsWindowsService()
	return err == nil && ok
}

// eventWriter writes each Write as an error entry of the Windows event log,
// for the errors a service has nowhere else to print.
type eventWriter struct{ l *eventlog.Log }

func (w eventWriter) Write(p []byte) (int, error) {
	if w.l != nil {
		_ = w.l.Error(1, strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// runService runs the agent under the service control manager until it
// asks the service to stop. A configuration error still goes through the
// service manager, which then records the service-specific exit code 2.
func runService(ctx context.Context, f *flags, sy *system) int {
	el, _ := eventlog.Open(ServiceName) // nil if the source is not installed
	if el != nil {
		defer el.Close()
	}
	stderr := eventWriter{el}
	h := &handler{ctx: ctx, sessions: &sessionRelay{}}
	cfg, err := loadConfig(f, sy)
	if err != nil {
		h.run = func(context.Context) int { return fail(stderr, err) }
	} else {
		cfg.sessions = h.sessions
		h.run = func(ctx context.Context) int { return runAgent(ctx, cfg, nil, stderr) }
	}
	if err := svc.Run(ServiceName, h); err != nil {
		return fail(stderr, fmt.Errorf("service: %w", err))
	}
	return h.code
}

// handler is the svc.Handler of the agent service.
type handler struct {
	ctx  context.Context
	run  func(ctx context.Context) int
	code int
	// sessions receives the session change notifications.
	sessions *sessionRelay
}

// Execute runs h.run until it returns or the service manager asks for a
// stop, which cancels its ctx. A non-zero exit code is reported as a
// service-specific exit code, which triggers the recovery actions.
func (h *handler) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	s <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- h.run(ctx) }()
	s <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown | svc.AcceptSessionChange}
	for {
		select {
		case code := <-done:
			h.code = code
			s <- svc.Status{State: svc.StopPending}
			if code == 0 {
				return false, 0
			}
			return true, uint32(code)
		case c := <-r:
			switch c.Cmd {
			case svc.Interrogate:
				s <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				s <- svc.Status{State: svc.StopPending, WaitHint: 30_000}
				cancel()
			case svc.SessionChange:
				h.sessions.notify(sessionChange(c))
			}
		}
	}
}

// sessionChange decodes a SERVICE_CONTROL_SESSIONCHANGE request: its
// event type and the session id of its WTSSESSION_NOTIFICATION.
func sessionChange(c svc.ChangeRequest) session.Change {
	var id uint32
	if c.EventData != 0 {
		// EventData points to the notification, owned by the service
		// manager for the duration of the call.
		id = (*(**windows.WTSSESSION_NOTIFICATION)(unsafe.Pointer(&c.EventData))).SessionID
	}
	return session.FromWTS(c.EventType, id)
}

// installService registers the running executable as an automatic service
// with f's flags on its command line and restart-on-failure recovery.
func installService(f *flags, sy *system, stdout, stderr io.Writer) int {
	args, err := f.serviceArgs()
	if err != nil {
		return fail(stderr, fmt.Errorf("install: %w", err))
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.Abs(exe)
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("install: locate the executable: %w", err))
	}
	m, err := mgr.Connect()
	if err != nil {
		return fail(stderr, fmt.Errorf("install: connect to the service manager (run as Administrator): %w", err))
	}
	defer m.Disconnect()
	if s, err := m.OpenService(ServiceName); err == nil {
		s.Close()
		return fail(stderr, fmt.Errorf("install: service %s already exists; run uninstall first", ServiceName))
	}
	s, err := m.CreateService(ServiceName, exe, mgr.Config{
		DisplayName: "Kanade Agent",
		Description: "kanade endpoint-management agent",
		StartType:   mgr.StartAutomatic,
	}, args...)
	if err != nil {
		return fail(stderr, fmt.Errorf("install: create service %s: %w", ServiceName, err))
	}
	defer s.Close()
	if err := s.SetRecoveryActions(recoveryActions, recoveryResetSecs); err != nil {
		_ = s.Delete()
		return fail(stderr, fmt.Errorf("install: set recovery actions: %w", err))
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		_ = s.Delete()
		return fail(stderr, fmt.Errorf("install: set recovery on non-zero exit: %w", err))
	}
	if err := eventlog.InstallAsEventCreate(ServiceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		fmt.Fprintf(stderr, "%s: warning: event log source %s: %v\n", progName, ServiceName, err)
	}
	envs := []string{configEnv}
	for _, s := range settings {
		envs = append(envs, s.env)
	}
	for _, e := range envs {
		if sy.getenv(e) != "" {
			fmt.Fprintf(stderr, "%s: warning: %s is set here but the service does not see this environment; use a flag or --config\n", progName, e)
		}
	}
	fmt.Fprintf(stdout, "installed service %s: %s %s\nstart it with: sc.exe start %s\n", ServiceName, exe, strings.Join(args, " "), ServiceName)
	return ExitOK
}

// uninstallService stops the service if it runs, then deletes it.
func uninstallService(stdout, stderr io.Writer) int {
	m, err := mgr.Connect()
	if err != nil {
		return fail(stderr, fmt.Errorf("uninstall: connect to the service manager (run as Administrator): %w", err))
	}
	defer m.Disconnect()
	s, err := m.OpenService(ServiceName)
	if err != nil {
		return fail(stderr, fmt.Errorf("uninstall: open service %s: %w", ServiceName, err))
	}
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return fail(stderr, fmt.Errorf("uninstall: stop service %s: %w", ServiceName, err))
		}
		deadline := time.Now().Add(stopTimeout)
		for {
			st, err := s.Query()
			if err != nil || st.State == svc.Stopped {
				break
			}
			if time.Now().After(deadline) {
				return fail(stderr, fmt.Errorf("uninstall: service %s did not stop within %s", ServiceName, stopTimeout))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	if err := s.Delete(); err != nil {
		return fail(stderr, fmt.Errorf("uninstall: delete service %s: %w", ServiceName, err))
	}
	_ = eventlog.Remove(ServiceName)
	fmt.Fprintf(stdout, "removed service %s\n", ServiceName)
	return ExitOK
}
