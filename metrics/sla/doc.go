// Package sla measures service-level targets of incidents in business
// hours: how much of a calendar's open time has passed between two
// instants, when a budget of open time runs out, and which warnings and
// breaches an incident has crossed.
//
// # Model
//
// A Calendar is a time zone, the weekdays it works, the wall-clock hour
// ranges of each working day (the same ranges on every working day) and
// holidays, which close a whole local day. Open time is measured between
// absolute instants: a range such as 09:00-17:00 opens at the instant the
// wall clock of the calendar's zone reads 09:00 on that date and closes when
// it reads 17:00, so a 09:00-17:00 day is 8h long on the days clocks change
// too, and a 00:00-24:00 day is 23h or 25h long on those days. A wall-clock
// time that does not exist or exists twice on a transition day resolves as
// time.Date resolves it. The built-in calendar "24x7" (AlwaysOpen) is open
// at every instant and has no holidays; a configured calendar that works
// 00:00-24:00 on all seven days behaves the same except on its holidays.
//
// A target (acknowledge, resolve) has a budget of open time that starts
// counting when the incident opens and stops when it is acknowledged or
// resolved. Pauses (the incident on hold) stop the clock: only open time
// outside every pause counts. The deadline is the earliest instant at
// which the budget is used up; a target whose clock is still running at its
// deadline is breached at that instant (even if the deadline falls at the
// close of business and the clock is stopped before the next opening), and
// one stopped at or before its deadline is met. Warnings are the same
// computation for fractions of the budget (WarnAt, by default 0.75 and 0.9).
//
// Everything here is a pure function of its arguments: no clock is read,
// so the daemon passes "now" and the same code serves replays. Deadline
// and NextOpen look at most SearchDays calendar days ahead and return the
// zero time when the answer lies further away (a calendar closed for ten
// years by holidays, or an absurd budget); they never loop unbounded.
//
// Long spans cost little: whole weeks without holidays and far from a
// clock change are counted arithmetically, the rest day by day.
//
// Durations in the configuration are Go durations ("90m", "4h") with one
// addition: a leading whole number of days, "3d" or "1d12h", where a day is
// 24 hours of open time. On a 09:00-17:00 calendar "3d" is therefore 72
// open hours, nine working days; write "24h" for three such working days.
package sla
