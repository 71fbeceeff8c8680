"""Runs the Grafana dashboards' queries on a current ClickHouse engine (chdb, in-process).

usage: TZ=UTC python3 chdb_dashboards.py INPUT.json

INPUT.json (written by TestDashboardQueriesOnCurrentEngine) holds "database",
"setup" (the schema DDL and INSERT ... VALUES of the seeded data) and
"queries" ([{"key", "sql"}], macros already expanded; tables are named without
a database, as Grafana's datasource sends them). Prints one JSON object:
{"version", "results": [{"key", "rows"} or {"key", "error"}]}. Exits 1 when the
setup fails; a failing query is reported in its result.
"""
import json
import sys
import tempfile

from chdb import session


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    with tempfile.TemporaryDirectory() as path:
        s = session.Session(path)
        for q in spec["setup"]:
            try:
                s.query(q)
            except Exception as e:  # chdb raises its own error types
                print(f"setup failed: {q[:200]}\n  {e}", file=sys.stderr)
                return 1
        s.query("USE " + spec["database"])
        s.query("SET output_format_json_quote_64bit_integers = 0")
        results = []
        for q in spec["queries"]:
            try:
                text = str(s.query(q["sql"], "JSONCompact")).strip()
                rows = json.loads(text)["data"] if text else []  # chdb prints nothing for no rows
                results.append({"key": q["key"], "rows": rows})
            except Exception as e:
                results.append({"key": q["key"], "error": str(e)})
        version = str(s.query("SELECT version()", "CSV")).strip().strip('"')
        json.dump({"version": version, "results": results}, sys.stdout)
        return 0


if __name__ == "__main__":
    sys.exit(main())
