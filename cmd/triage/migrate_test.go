package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testenv"
	"github.com/triage-dev/triage/metrics/clickhouse"
)

func TestMigrate(t *testing.T) {
	addr := testenv.RequireService(t, "CLICKHOUSE_ADDR", "a ClickHouse server: run deploy/dev/clickhouse.sh start and eval its env output")
	db := fmt.Sprintf("triage_cmd_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		w, err := clickhouse.Open(context.Background(), clickhouse.Options{Addr: addr, Database: db})
		if err == nil {
			_ = w.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			w.Close()
		}
	})
	for range 2 { // the second run applies nothing new
		var out, errb bytes.Buffer
		if code := run([]string{"migrate", "--addr", addr, "--database", db}, &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), "database "+db) || !strings.Contains(out.String(), "  1 initial tables") {
			t.Fatalf("output %q", out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"migrate", "--addr", "127.0.0.1:1", "--database", db}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "connection refused") {
		t.Fatalf("unreachable server: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"migrate"}, &out, &errb); code != 2 {
		t.Fatalf("no address: exit %d", code)
	}
}
