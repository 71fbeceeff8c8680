"""Runs Triage's ClickHouse DDL on a current ClickHouse engine (chdb, in-process).

usage: python3 chdb_check.py STATEMENTS.json

STATEMENTS.json is a JSON array of SQL statements (metrics/clickhouse.Statements
for a current server, written by TestDDLOnCurrentEngine). Each statement is run
twice (migrations must be idempotent), then one row is inserted into every table
twice and read back with FINAL, which must show it once. Exits 1 on failure.
"""
import datetime
import json
import sys
import tempfile

from chdb import session


def main():
    with open(sys.argv[1]) as f:
        statements = json.load(f)
    with tempfile.TemporaryDirectory() as path:
        s = session.Session(path)
        for attempt in (1, 2):
            for q in statements:
                try:
                    s.query(q)
                except Exception as e:  # chdb raises its own error types
                    print(f"run {attempt}: FAILED: {q}\n  {e}", file=sys.stderr)
                    return 1
        db = statements[0].split()[-1]  # CREATE DATABASE IF NOT EXISTS <db>
        tables = [t for t in str(s.query(f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name", "CSV")).split()]
        for t in tables:
            t = t.strip('"')
            # The same row twice: a retried batch. All columns default, but an
            # event's receive time is recent: the TTL would drop a 1970 row.
            row = "{}"
            if t == "events":
                now = datetime.datetime.now(datetime.timezone.utc)
                row = json.dumps({"received": now.strftime("%Y-%m-%d %H:%M:%S")})
            for _ in (1, 2):
                s.query(f"INSERT INTO {db}.{t} FORMAT JSONEachRow {row}")
            n = str(s.query(f"SELECT count() FROM {db}.{t} FINAL", "CSV")).strip()
            if n != "1":
                print(f"{t}: {n} rows with FINAL after inserting one row twice, want 1", file=sys.stderr)
                return 1
        create = str(s.query(f"SHOW CREATE TABLE {db}.events", "TSV"))
        if "TTL" not in create:
            print(f"events has no TTL on a current engine:\n{create}", file=sys.stderr)
            return 1
        version = str(s.query("SELECT version()", "CSV")).strip().strip('"')
        print(f"ok: {len(statements)} statements, {len(tables)} tables on ClickHouse {version} (chdb)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
