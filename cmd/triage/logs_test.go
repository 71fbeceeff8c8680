package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogsMine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.log")
	input := "connected to 10.0.0.1:80 in 10ms\r\n" +
		"order ORD-ABC shipped\n" +
		"connected to 10.0.0.2:81 in 12ms\n" +
		"order ORD-XYZ shipped\n" +
		"connected to 10.0.0.3:82 in 1.5s\n"
	if err := os.WriteFile(file, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long.log")
	if err := os.WriteFile(long, []byte("ok\n"+strings.Repeat("x", 2<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"templates", []string{"logs", "mine", file}, 0,
			"1\t3\tconnected to <IP> in <DURATION>\n2\t1\torder ORD-ABC shipped\n3\t1\torder ORD-XYZ shipped\n", ""},
		{"lines", []string{"logs", "mine", "--output", "lines", file}, 0,
			"1\tconnected to <IP> in <DURATION>\n2\torder ORD-ABC shipped\n1\tconnected to <IP> in <DURATION>\n3\torder ORD-XYZ shipped\n1\tconnected to <IP> in <DURATION>\n", ""},
		{"mask", []string{"logs", "mine", "--mask", "ORDER=ORD-[A-Z]+", "--output", "templates", file}, 0,
			"1\t3\tconnected to <IP> in <DURATION>\n2\t2\torder <ORDER> shipped\n", ""},
		{"evicted lines keep their text", []string{"logs", "mine", "--max-templates", "1", "--output", "lines", file}, 0,
			"1\tconnected to <IP> in <DURATION>\n2\torder ORD-ABC shipped\n3\tconnected to <IP> in <DURATION>\n4\torder ORD-XYZ shipped\n5\tconnected to <IP> in <DURATION>\n", ""},
		{"bad mask", []string{"logs", "mine", "--mask", "X=(", file}, 2, "", `mask "X"`},
		{"mask without name", []string{"logs", "mine", "--mask", "nope", file}, 2, "", "want NAME=REGEX"},
		{"bad output", []string{"logs", "mine", "--output", "json", file}, 2, "", "usage: triage logs mine"},
		{"no file", []string{"logs", "mine"}, 2, "", "usage: triage logs mine"},
		{"no subcommand", []string{"logs"}, 2, "", "usage: triage logs mine"},
		{"missing file", []string{"logs", "mine", filepath.Join(dir, "nope.log")}, 1, "", "no such file"},
		{"line too long", []string{"logs", "mine", long}, 1, "", "long.log:2: line longer than 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, stderr.String())
			}
			if tc.code == 0 && stdout.String() != tc.out {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), tc.out)
			}
			if !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.err)
			}
		})
	}
}

func TestLogsMineStdinAndLongLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old })
	go func() {
		w.WriteString("a " + strings.Repeat("y", 900<<10) + " 1\na " + strings.Repeat("y", 900<<10) + " 2\n")
		w.Close()
	}()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"logs", "mine", "-"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "1\t2\ta yyy") || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("stdout %.40q...", stdout.String())
	}
}
