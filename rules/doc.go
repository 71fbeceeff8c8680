// Package rules loads, compiles and evaluates the rules SREs write in
// expr-lang/expr (https://expr-lang.org) to steer correlation. A *Set
// implements correlate.Rules.
//
// A rule file is YAML with one top-level key, rules, a list of rules of five
// kinds: enrich (set labels, severity and routing on a new alert), drop
// (ignore an alert), maintenance (suppress or annotate alerts during a
// one-off or recurring window), correlate (join a new alert to an open
// incident) and group (group alerts by label values). Load reads any number
// of files; rule names are unique across all of them.
//
// Contract:
//
//   - Every expression is compiled once, at load, against a typed
//     environment (alert, ci and, in correlate rules only, incident), with
//     expr.AsBool. Unknown names, wrong types and non-boolean results are
//     load errors, reported with every other problem of the files as
//     file:line: message (yamlfile.Errors). Nothing is compiled per event.
//   - Evaluation is deterministic: the time comes in as an argument, the
//     expr builtin now() is disabled and date() parses in UTC, time zones of
//     maintenance windows are resolved at load. The package holds no clock,
//     starts no goroutines and does no I/O after Load.
//   - An expression that fails at run time on some event (a conversion
//     error, the memory budget) never panics: it counts as "did not match"
//     and is counted in Set.Errors and in the rule's Info.Errors.
//   - Cost is bounded at load: expressions of at most MaxExprBytes and
//     MaxExprNodes, no predicate nested in another (the expr VM bounds
//     memory, not steps), and MemoryBudget per evaluation.
//   - A Set is immutable after load and safe for concurrent use; reload by
//     loading a new Set and swapping it in. A nil *Set has no rules.
//
// Evaluation order of Admit, for an alert the engine does not hold yet:
//
//  1. Enrich rules, in rule order (files sorted by path, then position in
//     the file). Every matching rule applies; a later rule overwrites what
//     an earlier one set. Each rule sees the labels and severity the
//     earlier ones set.
//  2. Maintenance windows, in rule order, seeing the enriched alert. The
//     first suppressing window that is active and whose scope matches drops
//     the event; an annotating window records its name and evaluation
//     goes on.
//  3. Drop rules, in rule order, seeing the enriched alert: the first match
//     drops the event.
//
// Correlate and Group return the first matching rule in rule order.
package rules
