# Shared by the deploy/dev service scripts; source it after defining log().
# They keep one pid file ($PIDFILE) per service instance.

# pidfile_pid PATTERN: print the pid in $PIDFILE when that process is alive
# and its command line contains PATTERN; else remove a stale pid file and
# return 1.
pidfile_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid cmd=""; pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
  if [[ "$cmd" == *"$1"* ]]; then
    echo "$pid"; return 0
  fi
  log "removing stale pid file ($PIDFILE, pid '${pid}')"
  rm -f "$PIDFILE"; return 1
}

# stop_pid WHAT: SIGTERM the running process (running_pid), SIGKILL after
# 30 s; exit 0 when nothing runs.
stop_pid() {
  local pid i
  pid="$(running_pid)" || { log "not running"; return 0; }
  log "stopping $1 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "still alive after 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 1
  rm -f "$PIDFILE"
}
