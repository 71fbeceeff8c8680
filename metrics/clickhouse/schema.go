package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Version is a ClickHouse server version, as `SELECT version()` reports it
// ("18.16.1", "24.8.4.13").
type Version struct {
	Major, Minor, Patch int
	Raw                 string
}

// ParseVersion parses the output of `SELECT version()`. Missing or
// non-numeric parts are 0.
func ParseVersion(s string) Version {
	v := Version{Raw: strings.TrimSpace(s)}
	parts := strings.Split(v.Raw, ".")
	dst := []*int{&v.Major, &v.Minor, &v.Patch}
	for i := 0; i < len(parts) && i < len(dst); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			break
		}
		*dst[i] = n
	}
	return v
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

func (v Version) String() string { return v.Raw }

// Features are the server capabilities the schema depends on, decided from
// the server version. Everything else in the schema is restricted to what
// ClickHouse 18.16 (Debian's package, used by CI) and current releases both
// accept: MergeTree-family engines with PARTITION BY/ORDER BY, and the types
// UInt*, Int*, Float64, String, Date, DateTime, Array(String), Nullable.
// No LowCardinality (18.16 needs an experimental setting), DateTime64, Map or
// JSON (unknown to 18.16).
type Features struct {
	// TableTTL: `TTL expr` table clauses and `ALTER TABLE ... MODIFY TTL`
	// (ClickHouse 19.6 and later; a syntax error on 18.16).
	TableTTL bool
}

// FeaturesOf returns the features a server of version v supports.
func FeaturesOf(v Version) Features {
	return Features{TableTTL: v.AtLeast(19, 6)}
}

// AllFeatures is what a current ClickHouse release supports; used to check the
// full DDL against a current engine.
var AllFeatures = Features{TableTTL: true}

// EventsRetentionDays is how long raw events are kept where the server
// supports TTL. Incidents, problems, SLA events and feedback are kept forever:
// they are small and are what the KPI reports are made of.
const EventsRetentionDays = 180

// A Migration is one versioned schema change. Versions are applied in
// ascending order and recorded in schema_migrations; a recorded version is
// never applied again. A migration whose Requires does not hold for the server
// is skipped without being recorded, so it is applied once the server is
// upgraded.
type Migration struct {
	Version uint32
	Name    string
	// Requires, when set, says whether the server can run the migration.
	Requires func(Features) bool
	// SQL returns the statements, for tables in database db. Each statement
	// must be idempotent on its own (IF NOT EXISTS ...), so that a migration
	// interrupted half-way can simply run again.
	SQL func(db string) []string
}

// Migrations is the schema, in version order.
//
// Every table is a ReplacingMergeTree keyed by the natural id of its rows, so
// re-inserting a row (the writer retries a batch whose acknowledgement was
// lost) leaves one row once parts merge. Until then duplicates may be visible:
// queries must read with FINAL (`SELECT ... FROM incidents FINAL`) or
// aggregate with argMax(column, version) GROUP BY the id. Versioned tables
// (alerts, incidents, problems) keep the row with the highest version, so the
// latest state of an incident is `SELECT ... FROM incidents FINAL WHERE id = ?`.
// Partitions use a column that never changes for a given id (first_seen,
// opened_at, time), so all versions of a row land in the same partition and
// can replace each other.
var Migrations = []Migration{
	{Version: 1, Name: "initial tables", SQL: func(db string) []string {
		return []string{
			`CREATE TABLE IF NOT EXISTS ` + db + `.events (
	received DateTime,
	time DateTime,
	seq UInt64,
	source String,
	fingerprint String,
	status String,
	severity String,
	alertname String,
	service String,
	ci String,
	label_keys Array(String),
	label_values Array(String)
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(received) ORDER BY (received, seq)`,
			`CREATE TABLE IF NOT EXISTS ` + db + `.alerts (
	incident_id UInt64,
	fingerprint String,
	status String,
	severity String,
	ci String,
	service String,
	alertname String,
	count UInt64,
	first_seen DateTime,
	last_seen DateTime,
	version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(first_seen) ORDER BY (incident_id, fingerprint)`,
			`CREATE TABLE IF NOT EXISTS ` + db + `.incidents (
	id UInt64,
	key String,
	title String,
	status String,
	priority String,
	severity String,
	ci String,
	service String,
	assignment_group String,
	alert_count UInt64,
	event_count UInt64,
	opened_at DateTime,
	acknowledged_at DateTime,
	resolved_at DateTime,
	reopen_count UInt64,
	root_cause_ci String,
	problem_id UInt64,
	user_impact_minutes Float64,
	version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(opened_at) ORDER BY id`,
			`CREATE TABLE IF NOT EXISTS ` + db + `.incident_changes (
	incident_id UInt64,
	seq UInt64,
	time DateTime,
	kind String,
	actor String,
	message String
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(time) ORDER BY (incident_id, seq)`,
			`CREATE TABLE IF NOT EXISTS ` + db + `.sla_events (
	incident_id UInt64,
	seq UInt64,
	time DateTime,
	policy String,
	target String,
	kind String,
	fraction Float64,
	business_seconds UInt64,
	priority String,
	service String
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(time) ORDER BY (incident_id, seq)`,
			`CREATE TABLE IF NOT EXISTS ` + db + `.problems (
	id UInt64,
	key String,
	title String,
	status String,
	known_error UInt8,
	workaround String,
	root_ci String,
	signature String,
	incident_count UInt64,
	opened_at DateTime,
	updated_at DateTime,
	version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(opened_at) ORDER BY id`,
			`CREATE TABLE IF NOT EXISTS ` + db + `.feedback (
	incident_id UInt64,
	seq UInt64,
	time DateTime,
	score UInt8,
	comment String,
	service String
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(time) ORDER BY (incident_id, seq)`,
		}
	}},
	{Version: 2, Name: "events retention", Requires: func(f Features) bool { return f.TableTTL },
		SQL: func(db string) []string {
			return []string{fmt.Sprintf(`ALTER TABLE %s.events MODIFY TTL received + INTERVAL %d DAY`, db, EventsRetentionDays)}
		}},
}

// migrationsTable is created before any migration runs.
func migrationsTable(db string) string {
	return `CREATE TABLE IF NOT EXISTS ` + db + `.schema_migrations (
	version UInt32,
	name String,
	applied_at DateTime
) ENGINE = ReplacingMergeTree() ORDER BY version`
}

// Statements returns every statement Migrate would run on an empty database
// db of a server with features f, in order: the database, schema_migrations,
// then each applicable migration.
func Statements(db string, f Features) []string {
	out := []string{"CREATE DATABASE IF NOT EXISTS " + db, migrationsTable(db)}
	for _, m := range Migrations {
		if m.Requires == nil || m.Requires(f) {
			out = append(out, m.SQL(db)...)
		}
	}
	return out
}

// validIdent reports whether s can be used unquoted as a database name.
// ValidIdent reports whether s is a database name Triage accepts: letters,
// digits and underscores, not starting with a digit.
func ValidIdent(s string) bool { return validIdent(s) }

func validIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ServerVersion asks the server for its version (`SELECT version()`).
func ServerVersion(ctx context.Context, conn driver.Conn) (Version, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return Version{}, fmt.Errorf("reading server version: %w", err)
	}
	return ParseVersion(s), nil
}

// Migrate brings database (created if missing) to the current schema: it
// applies, in version order, each migration of Migrations not yet recorded in
// database.schema_migrations and supported by the server, and records it.
// Running it again is a no-op. It is safe to run from several processes at
// once: every statement is idempotent and a version recorded twice collapses.
func Migrate(ctx context.Context, conn driver.Conn, database string) error {
	if !validIdent(database) {
		return fmt.Errorf("clickhouse: invalid database name %q", database)
	}
	ver, err := ServerVersion(ctx, conn)
	if err != nil {
		return err
	}
	features := FeaturesOf(ver)
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + database, migrationsTable(database)} {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating %s.schema_migrations: %w", database, err)
		}
	}
	applied, err := appliedVersions(ctx, conn, database)
	if err != nil {
		return err
	}
	for _, m := range Migrations {
		if applied[m.Version] || (m.Requires != nil && !m.Requires(features)) {
			continue
		}
		for _, q := range m.SQL(database) {
			if err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("migration %d (%s) on ClickHouse %s: %w", m.Version, m.Name, ver, err)
			}
		}
		// INSERT ... SELECT: an INSERT carrying inline data (VALUES (...)) hangs on
		// 18.16 over the native protocol (the server waits for data blocks).
		if err := conn.Exec(ctx, "INSERT INTO "+database+".schema_migrations (version, name, applied_at) SELECT toUInt32(?), ?, now()",
			m.Version, m.Name); err != nil {
			return fmt.Errorf("recording migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, conn driver.Conn, db string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("reading %s.schema_migrations: %w", db, err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("reading %s.schema_migrations: %w", db, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s.schema_migrations: %w", db, err)
	}
	return applied, nil
}
