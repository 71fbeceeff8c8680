package app_test

// The durability guarantee, tested the hard way: the daemon runs as a real
// process (this test binary re-executed), 8 senders stream webhook posts at
// it, the process is killed with SIGKILL mid-stream and restarted on the same
// data dir. Every acknowledged alert must be there, counts must lie between
// what was acknowledged and what was sent, and no incident may be duplicated,
// also after the senders retry what was not acknowledged.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/server"
	"github.com/triage-dev/triage/internal/testenv"
)

const daemonEnv = "TRIAGE_TEST_DAEMON_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(daemonEnv); dir != "" {
		os.Exit(runDaemon(dir))
	}
	os.Exit(m.Run())
}

// runDaemon is the child process: serve on a free loopback port and write
// the address to dir/addr once listening.
func runDaemon(dir string) int {
	cfg := config.Default()
	if c, err := config.Load(filepath.Join(dir, "config.yaml")); err == nil {
		cfg = c // a test's own settings (e.g. Kafka)
	} else if !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Correlation.Window = config.Duration(time.Hour)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	err := app.Run(ctx, app.Options{
		Config: cfg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Listening: func(addr net.Addr) {
			tmp := filepath.Join(dir, "addr.tmp")
			if err := os.WriteFile(tmp, []byte(addr.String()), 0o600); err == nil {
				_ = os.Rename(tmp, filepath.Join(dir, "addr"))
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type daemon struct {
	cmd  *exec.Cmd
	url  string
	logs *testenv.SyncBuffer
}

func startDaemon(t *testing.T, dir string) *daemon {
	t.Helper()
	_ = os.Remove(filepath.Join(dir, "addr"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{logs: &testenv.SyncBuffer{}}
	d.cmd = exec.Command(exe, "-test.run=^$")
	d.cmd.Env = append(os.Environ(), daemonEnv+"="+dir)
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Kill(); _ = d.cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "addr")); err == nil {
			d.url = "http://" + string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start; its log:\n%s", d.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// crashAlert k of group g: 20 groups (alertname × service), alerts repeat
// so that deduplication counts are tested too.
func crashPayload(req int) (body []byte, fps []string) {
	var alerts []map[string]any
	for i := 0; i < 5; i++ {
		n := (req*5 + i) % 600 // 600 distinct alerts, each sent several times
		labels := map[string]string{
			"alertname": fmt.Sprintf("Alert%d", n%4),
			"service":   fmt.Sprintf("svc%d", n%5),
			"instance":  fmt.Sprintf("host%d:9100", n),
		}
		fp := triage.Fingerprint(labels)
		fps = append(fps, fp)
		alerts = append(alerts, map[string]any{
			"status": "firing", "labels": labels, "fingerprint": fp,
			"annotations": map[string]string{"summary": "crash test"},
			"startsAt":    "2026-11-24T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
		})
	}
	body, _ = json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "triage", "alerts": alerts})
	return body, fps
}

func TestSIGKILLLosesNoAcknowledgedEvent(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	client := &http.Client{Timeout: 10 * time.Second}

	const senders, perSender, killAfter = 8, 200, 400
	var mu sync.Mutex
	acked := map[string]int64{} // fingerprint → acknowledged notifications
	sent := map[string]int64{}  // fingerprint → notifications sent (acked or not)
	var unacked []int           // request numbers to retry after the restart
	ackedReqs := 0
	killed := make(chan struct{})
	var killOnce sync.Once

	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perSender; i++ {
				req := s*perSender + i
				body, fps := crashPayload(req)
				mu.Lock()
				for _, fp := range fps {
					sent[fp]++
				}
				mu.Unlock()
				resp, err := client.Post(d.url+"/api/v1/alerts", "application/json", bytes.NewReader(body))
				ok := err == nil && resp.StatusCode == http.StatusOK
				if resp != nil {
					resp.Body.Close()
				}
				mu.Lock()
				if ok {
					for _, fp := range fps {
						acked[fp]++
					}
					ackedReqs++
					if ackedReqs == killAfter {
						killOnce.Do(func() {
							_ = d.cmd.Process.Signal(syscall.SIGKILL)
							close(killed)
						})
					}
				} else {
					unacked = append(unacked, req)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("only %d requests were acknowledged; the kill never happened", ackedReqs)
	}
	_ = d.cmd.Wait()
	t.Logf("acknowledged %d requests before and around the kill, %d not acknowledged", ackedReqs, len(unacked))
	if len(unacked) == 0 {
		t.Fatal("no request failed: the kill did not land mid-stream")
	}

	d2 := startDaemon(t, dir)
	alerts, incidents := readAll(t, client, d2.url)
	for fp, n := range acked {
		got, ok := alerts[fp]
		if !ok {
			t.Errorf("acknowledged alert %s is missing after the restart", fp)
			continue
		}
		if got < n || got > sent[fp] {
			t.Errorf("alert %s count %d, want between %d acknowledged and %d sent", fp, got, n, sent[fp])
		}
	}
	checkOneIncidentPerGroup(t, incidents)

	// The senders retry what was not acknowledged: still one incident per group.
	for _, req := range unacked {
		body, _ := crashPayload(req)
		resp, err := client.Post(d2.url+"/api/v1/alerts", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("retry after restart: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	alerts, incidents = readAll(t, client, d2.url)
	if len(alerts) != 600 {
		t.Errorf("%d alerts after the retries, want 600", len(alerts))
	}
	checkOneIncidentPerGroup(t, incidents)
	if len(incidents) != 20 {
		t.Errorf("%d incidents, want 20 (4 alertnames × 5 services)", len(incidents))
	}
}

func checkOneIncidentPerGroup(t *testing.T, incidents []triage.Incident) {
	t.Helper()
	byKey := map[string][]string{}
	for _, inc := range incidents {
		byKey[inc.GroupKey] = append(byKey[inc.GroupKey], inc.Key)
	}
	for k, keys := range byKey {
		if len(keys) > 1 {
			t.Errorf("group %s has %d incidents: %s", k, len(keys), strings.Join(keys, ", "))
		}
	}
}

// readAll reads every incident in full and returns alert counts by fingerprint.
func readAll(t *testing.T, client *http.Client, url string) (map[string]int64, []triage.Incident) {
	t.Helper()
	var list server.IncidentList
	fetchJSON(t, client, url+"/api/v1/incidents?limit=1000", &list)
	counts := map[string]int64{}
	var full []triage.Incident
	for _, inc := range list.Incidents {
		var one triage.Incident
		fetchJSON(t, client, fmt.Sprintf("%s/api/v1/incidents/%d", url, inc.ID), &one)
		for _, a := range one.Alerts {
			if _, dup := counts[a.Fingerprint]; dup {
				t.Errorf("alert %s is in two incidents", a.Fingerprint)
			}
			counts[a.Fingerprint] = a.Count
		}
		full = append(full, one)
	}
	return counts, full
}

func fetchJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
