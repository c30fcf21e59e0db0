package session

// WTS session change event types (WTSSESSION_NOTIFICATION's wParam), the
// values of golang.org/x/sys/windows' WTS_* constants, here for every OS.
const (
	wtsConsoleConnect    = 0x1
	wtsConsoleDisconnect = 0x2
	wtsSessionLogon      = 0x5
	wtsSessionLogoff     = 0x6
	wtsSessionLock       = 0x7
	wtsSessionUnlock     = 0x8
)

// FromWTS maps a Windows session change notification (the event type of
// SERVICE_CONTROL_SESSIONCHANGE and the session id of its
// WTSSESSION_NOTIFICATION) to a Change: WTS_SESSION_LOGON, _LOGOFF, _LOCK
// and _UNLOCK to KindLogon, KindLogoff, KindLock and KindUnlock; every
// other event (console connect or disconnect, remote sessions, ...) to a
// Change with an empty Kind, which only makes the supervisor look at the
// console session again.
func FromWTS(eventType, sessionID uint32) Change {
	c := Change{Session: sessionID}
	switch eventType {
	case wtsSessionLogon:
		c.Kind = KindLogon
	case wtsSessionLogoff:
		c.Kind = KindLogoff
	case wtsSessionLock:
		c.Kind = KindLock
	case wtsSessionUnlock:
		c.Kind = KindUnlock
	}
	return c
}
