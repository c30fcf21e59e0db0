package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
	"github.com/robfig/cron/v3"
)

// freezeActive is upstream's Freeze::is_active: no bounds freezes; with
// bounds, [from, until) in the freeze's tz; an unparseable bound freezes
// (fail closed: a freeze is a safety switch).
func freezeActive(f *wire.Freeze, now time.Time) bool {
	loc := wire.TzLocation(f.Tz)
	var from, until time.Time
	var err error
	if f.From != "" {
		if from, err = wire.ParseBound(f.From, loc); err != nil {
			return true
		}
	}
	if f.Until != "" {
		if until, err = wire.ParseBound(f.Until, loc); err != nil {
			return true
		}
	}
	if f.From != "" && now.Before(from) {
		return false
	}
	if f.Until != "" && !now.Before(until) {
		return false
	}
	return true
}

// ActiveContains is upstream's Active::contains: now is inside [from,
// until); a missing or unparseable bound is ignored (fail open, as
// upstream: validation rejects it at write time).
func ActiveContains(a *wire.Active, now time.Time, loc *time.Location) bool {
	if a == nil {
		return true
	}
	if a.From != "" {
		if from, err := wire.ParseBound(a.From, loc); err == nil && now.Before(from) {
			return false
		}
	}
	if a.Until != "" {
		if until, err := wire.ParseBound(a.Until, loc); err == nil && !now.Before(until) {
			return false
		}
	}
	return true
}

// ConstraintsAllow is upstream's Constraints::allows: no fire on a
// skip_dates date (the wall date in loc), none outside window ([start,
// end) of the wall time in loc; start > end crosses midnight). A skip date
// or window that does not parse blocks every fire (fail closed).
func ConstraintsAllow(c *wire.Constraints, now time.Time, loc *time.Location) bool {
	if c == nil {
		return true
	}
	wall := now.In(loc)
	if len(c.SkipDates) > 0 {
		today := wall.Format(time.DateOnly)
		for _, d := range c.SkipDates {
			t, err := time.Parse(time.DateOnly, strings.TrimSpace(d))
			if err != nil || t.Format(time.DateOnly) == today {
				return false
			}
		}
	}
	if c.Window == "" {
		return true
	}
	start, end, err := wire.ParseWindow(c.Window)
	if err != nil {
		return false
	}
	m := wall.Hour()*60 + wall.Minute()
	if start <= end {
		return start <= m && m < end
	}
	return m >= start || m < end
}

// RequireMet evaluates constraints.require on this host (upstream's
// require_met): every set requirement must hold, and one that cannot be
// read does not hold (fail closed). An idle that does not parse is no
// requirement, as upstream. A fire tells the two apart: an unreadable
// requirement is unsupported (a skipped result, exit 122), an unmet one a
// silent skip.
func (s *Scheduler) RequireMet(r *wire.Require) bool {
	met, unsup := s.evalRequire(r)
	return met && len(unsup) == 0
}

// evalRequire reads each set requirement once: met is false when a
// readable one does not hold; unsupported names, in the document's field
// names, those this agent cannot sense (its sensor reports not known:
// ac_power without /sys/class/power_supply or with ACLineStatus unknown,
// idle without Options.Idle or when it cannot tell, cpu_below without a
// CPU sample, network without routing tables or a connectivity hint).
func (s *Scheduler) evalRequire(r *wire.Require) (met bool, unsupported []string) {
	met = true
	if r.IsEmpty() {
		return met, nil
	}
	if r.ACPower {
		if on, known := s.opts.ACPower(); !known {
			unsupported = append(unsupported, "ac_power")
		} else if !on {
			met = false
		}
	}
	if r.Idle != "" {
		if min, err := wire.ParseDuration(strings.TrimSpace(r.Idle)); err == nil {
			var idle time.Duration
			known := false
			if s.opts.Idle != nil {
				idle, known = s.opts.Idle()
			}
			if !known {
				unsupported = append(unsupported, "idle")
			} else if idle < min {
				met = false
			}
		}
	}
	if r.CPUBelow != nil {
		if pct, known := s.opts.CPUPercent(); !known {
			unsupported = append(unsupported, "cpu_below")
		} else if !(pct < *r.CPUBelow) {
			met = false
		}
	}
	if r.Network {
		if up, known := s.opts.NetworkUp(); !known {
			unsupported = append(unsupported, "network")
		} else if !up {
			met = false
		}
	}
	return met, unsupported
}

// cronParser parses the 6-field crons a calendar lowers to (upstream's
// croner config: seconds required; day of month and day of week both
// honoured, which robfig does when either is "*", as they always are here).
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// calendarCache holds parsed calendars by their spec.
var calendarCache struct {
	sync.Mutex
	m map[string]*loweredCalendar
}

type loweredCalendar struct {
	at    wire.CalendarAt
	sched cron.Schedule // nil for a one-shot
	cron  string
	err   error
}

// LowerCalendar is the 6-field cron a repeating calendar lowers to
// ("0 <min> <hour> * * <dow>", the weekdays of every day token, numeric) and
// its parsed form. A one-shot has no cron (empty). The nth-weekday ("tue#2")
// and last-weekday ("friL") tokens lower to their weekday; NextCalendarFire
// keeps only the matching dates.
func LowerCalendar(c *wire.CalendarSpec) (string, error) {
	l := lowerCalendar(c)
	return l.cron, l.err
}

func lowerCalendar(c *wire.CalendarSpec) *loweredCalendar {
	k := c.At + "\x00" + strings.Join(c.Days, "\x00")
	calendarCache.Lock()
	defer calendarCache.Unlock()
	if l, ok := calendarCache.m[k]; ok {
		return l
	}
	l := &loweredCalendar{}
	l.at, l.err = c.Parse()
	if l.err == nil && l.at.Date.IsZero() {
		dow := "*"
		if len(l.at.Days) > 0 {
			var set [7]bool
			for _, t := range l.at.Days {
				if t.Any {
					set = [7]bool{true, true, true, true, true, true, true}
					break
				}
				for d := t.From; ; d = (d + 1) % 7 {
					set[d] = true
					if d == t.To {
						break
					}
				}
			}
			var parts []string
			for d, on := range set {
				if on {
					parts = append(parts, strconv.Itoa(d))
				}
			}
			dow = strings.Join(parts, ",")
		}
		l.cron = fmt.Sprintf("0 %d %d * * %s", l.at.Minute, l.at.Hour, dow)
		l.sched, l.err = cronParser.Parse(l.cron)
	}
	if calendarCache.m == nil || len(calendarCache.m) >= 4096 {
		calendarCache.m = map[string]*loweredCalendar{}
	}
	calendarCache.m[k] = l
	return l
}

// NextCalendarFire is the first fire of the calendar strictly after t, in
// the schedule's tz (local or utc); ok is false when there is none (a
// past one-shot, or an unparseable calendar, which never fires).
func NextCalendarFire(c *wire.CalendarSpec, tz string, t time.Time) (time.Time, bool) {
	l := lowerCalendar(c)
	if l.err != nil {
		return time.Time{}, false
	}
	loc := wire.TzLocation(tz)
	if !l.at.Date.IsZero() {
		d := l.at.Date
		fire := time.Date(d.Year(), d.Month(), d.Day(), l.at.Hour, l.at.Minute, 0, 0, loc)
		return fire, fire.After(t)
	}
	next := t.In(loc)
	for range 2000 { // a 5th weekday may be months away; bounded anyway
		next = l.sched.Next(next)
		if next.IsZero() {
			return time.Time{}, false
		}
		if len(l.at.Days) == 0 {
			return next, true
		}
		for _, tok := range l.at.Days {
			if tok.Matches(next) {
				return next, true
			}
		}
	}
	return time.Time{}, false
}
