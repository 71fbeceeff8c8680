// Package clickhouse is Triage's ClickHouse schema and writer: versioned
// migrations of the tables the KPI/SLA dashboards read (events, alerts,
// incidents, incident_changes, sla_events, problems, feedback), and a Writer
// that sends rows to them in native-protocol batches.
//
// The schema and queries keep to what both ClickHouse 18.16 (Debian's
// package, used by CI) and current releases run; newer features are gated on
// the server version (see Features). Every table deduplicates on its rows'
// natural id (ReplacingMergeTree), so a batch may be written twice: readers
// query with FINAL or argMax (see Migrations).
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Options configure a Writer.
type Options struct {
	Addr     string // host:port of the native protocol (default 127.0.0.1:9000)
	Database string // default "triage"; created if missing
	Username string // default "default"
	Password string
	// BatchRows is the most rows sent in one INSERT; a longer slice is split
	// (default 50000).
	BatchRows int
	// FlushInterval is how often the owner of the Writer should call Write
	// with what it has buffered (default 5s). The Writer never flushes on its
	// own: Write is synchronous.
	FlushInterval time.Duration
	DialTimeout   time.Duration // default 5s
	Logger        *slog.Logger  // default slog.Default()
	// Registerer receives the writer's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// metrics, when set, are used instead of registering new ones: the
	// exporter opens a writer again after failures.
	metrics *metrics
}

func (o *Options) setDefaults() {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:9000"
	}
	if o.Database == "" {
		o.Database = "triage"
	}
	if o.Username == "" {
		o.Username = "default"
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 50000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 5 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

type metrics struct {
	rows    *prometheus.CounterVec
	errors  prometheus.Counter
	seconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_clickhouse_rows_written_total",
			Help: "Rows acknowledged by ClickHouse, by table.",
		}, []string{"table"}),
		errors: f.NewCounter(prometheus.CounterOpts{
			Name: "triage_clickhouse_write_errors_total",
			Help: "Inserts that failed (each failed batch of one table counts once).",
		}),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "triage_clickhouse_batch_seconds",
			Help:    "Duration of one INSERT batch of one table.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
}

// Writer writes Batches to ClickHouse. It is safe for concurrent use.
type Writer struct {
	opts    Options
	conn    driver.Conn
	version Version
	m       *metrics
}

// Open connects to the server and applies the schema migrations. The returned
// error is a *WriteError, retryable when the server could not be reached.
func Open(ctx context.Context, opts Options) (*Writer, error) {
	opts.setDefaults()
	if !validIdent(opts.Database) {
		return nil, &WriteError{Op: "open", Err: fmt.Errorf("invalid database name %q", opts.Database)}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{opts.Addr},
		Auth:        clickhouse.Auth{Database: "default", Username: opts.Username, Password: opts.Password},
		DialTimeout: opts.DialTimeout,
	})
	if err != nil {
		return nil, classify("open", "", err)
	}
	m := opts.metrics
	if m == nil {
		m = newMetrics(opts.Registerer)
	}
	w := &Writer{opts: opts, conn: conn, m: m}
	if err := w.init(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return w, nil
}

func (w *Writer) init(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		return classify("open", "", err)
	}
	v, err := ServerVersion(ctx, w.conn)
	if err != nil {
		return classify("open", "", err)
	}
	w.version = v
	if err := Migrate(ctx, w.conn, w.opts.Database); err != nil {
		return classify("migrate", "", err)
	}
	w.opts.Logger.Info("clickhouse writer ready", "addr", w.opts.Addr, "database", w.opts.Database,
		"server_version", v.String())
	return nil
}

// ServerVersion is the version of the server, read at Open.
func (w *Writer) ServerVersion() Version { return w.version }

// Ping checks that the server answers.
func (w *Writer) Ping(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		return classify("ping", "", err)
	}
	return nil
}

// Conn is the underlying clickhouse-go connection pool, for queries.
func (w *Writer) Conn() driver.Conn { return w.conn }

// Close closes the connections.
func (w *Writer) Close() error { return w.conn.Close() }

// Write sends every non-empty slice of b to its table, as one INSERT per
// table (several when a slice is longer than BatchRows), and returns when
// ClickHouse has acknowledged all of them or one failed. On error some tables
// may have been written and others not: the caller retries the whole batch,
// which the tables' deduplication makes harmless. The error is a *WriteError;
// IsRetryable tells whether trying again later can succeed.
func (w *Writer) Write(ctx context.Context, b Batch) error {
	for _, t := range b.tables() {
		for from := 0; from < t.rows; from += w.opts.BatchRows {
			to := min(from+w.opts.BatchRows, t.rows)
			start := time.Now()
			err := w.batchInsert(ctx, t, from, to)
			w.m.seconds.Observe(time.Since(start).Seconds())
			if err != nil {
				w.m.errors.Inc()
				return classify("insert", t.name, err)
			}
			w.m.rows.WithLabelValues(t.name).Add(float64(to - from))
		}
	}
	return nil
}

// errNoHeader: the server answered the INSERT without the table structure.
var errNoHeader = errors.New("server sent no table structure for the INSERT")

// batchInsert sends rows [from, to) of t as one native batch.
//
// The INSERT always names its columns. clickhouse-go sends a batch as
// `INSERT INTO t (...) FORMAT Native` and builds the block from the header the
// server answers with; ClickHouse 18.16 answers `INSERT INTO t FORMAT Native`
// (no column list) with an empty header, so every Append fails with
// "expected 0 arguments, got N", while with a column list it sends the
// header and the batch works on 18.16 as on current servers.
func (w *Writer) batchInsert(ctx context.Context, t table, from, to int) error {
	q := "INSERT INTO " + w.opts.Database + "." + t.name + " ("
	for i, c := range t.columns {
		if i > 0 {
			q += ", "
		}
		q += c
	}
	b, err := w.conn.PrepareBatch(ctx, q+")")
	if err != nil {
		return err
	}
	if len(b.Columns()) != len(t.columns) {
		_ = b.Abort()
		return errNoHeader
	}
	for i := from; i < to; i++ {
		if err := t.row(b, i); err != nil {
			_ = b.Abort()
			return fmt.Errorf("row %d: %w", i, err)
		}
	}
	return b.Send()
}

// WriteError is the error of Open and Write.
type WriteError struct {
	Op        string // open, migrate, ping, insert
	Table     string // for insert
	Retryable bool
	Err       error
}

func (e *WriteError) Error() string {
	s := "clickhouse " + e.Op
	if e.Table != "" {
		s += " " + e.Table
	}
	if e.Retryable {
		s += " (retryable)"
	}
	return s + ": " + e.Err.Error()
}

func (e *WriteError) Unwrap() error { return e.Err }

// IsRetryable reports whether err (from Open or Write) may succeed when tried
// again later: the server was unreachable, timed out, dropped the connection
// or was overloaded. Errors in the data or schema are not retryable.
func IsRetryable(err error) bool {
	var we *WriteError
	if errors.As(err, &we) {
		return we.Retryable
	}
	return retryable(err)
}

func classify(op, tbl string, err error) error {
	var we *WriteError
	if errors.As(err, &we) {
		return err
	}
	return &WriteError{Op: op, Table: tbl, Retryable: retryable(err), Err: err}
}

// Server error codes worth retrying: timeouts, network, overload, read-only
// replicas, too many parts.
var retryableCodes = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	425: true, // SYSTEM_ERROR
}

func retryable(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return retryableCodes[ex.Code]
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &ne):
		return true // dial and I/O errors
	}
	return false
}
