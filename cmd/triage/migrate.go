package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/triage-dev/triage/metrics/clickhouse"
)

// migrate applies the ClickHouse schema migrations (serve also does at
// start) and lists what is applied.
func migrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "config file (YAML) with a clickhouse section")
	addr := fs.String("addr", "", "ClickHouse native address, overrides clickhouse.addr")
	db := fs.String("database", "", "database, overrides clickhouse.database")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: triage migrate [--config FILE] [--addr HOST:PORT] [--database NAME]")
		return 2
	}
	cfg, ok := loadConfig(*cfgFile, stderr)
	if !ok {
		return 1
	}
	ch := cfg.ClickHouse
	if *addr != "" {
		ch.Addr = *addr
	}
	if *db != "" {
		ch.Database = *db
	}
	if ch.Addr == "" {
		fmt.Fprintln(stderr, "triage migrate: no ClickHouse address: set clickhouse.addr or --addr")
		return 2
	}
	password, err := ch.Password(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w, err := clickhouse.Open(ctx, clickhouse.Options{Addr: ch.Addr, Database: ch.Database, Username: ch.Username, Password: password})
	if err != nil {
		fmt.Fprintf(stderr, "triage migrate: %v\n", err)
		return 1
	}
	defer w.Close()
	rows, err := w.Conn().Query(ctx, "SELECT version, name FROM "+ch.Database+".schema_migrations ORDER BY version")
	if err != nil {
		fmt.Fprintf(stderr, "triage migrate: reading schema_migrations: %v\n", err)
		return 1
	}
	defer rows.Close()
	fmt.Fprintf(stdout, "ClickHouse %s at %s, database %s; migrations applied:\n", w.ServerVersion(), ch.Addr, ch.Database)
	for rows.Next() {
		var v uint32
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			fmt.Fprintf(stderr, "triage migrate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "  %d %s\n", v, name)
	}
	return 0
}
