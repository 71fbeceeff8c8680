package clickhouse

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDDLOnCurrentEngine runs the DDL of the current-server path (TTL
// included) on a current ClickHouse engine embedded in Python (chdb), when
// python3 can import chdb (pip install chdb). Optional: skipped otherwise,
// also in CI, whose server is the old 18.16.
func TestDDLOnCurrentEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping chdb check in -short mode")
	}
	if err := exec.Command("python3", "-c", "import chdb").Run(); err != nil {
		t.Skipf("skipping: python3 cannot import chdb (%v); pip install chdb to check the DDL on a current ClickHouse engine", err)
	}
	js, err := json.Marshal(Statements("triage_chdb", AllFeatures))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "statements.json")
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", filepath.Join("testdata", "chdb_check.py"), file).CombinedOutput()
	if err != nil {
		t.Fatalf("chdb check failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
