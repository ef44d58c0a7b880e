# Sourced by the network benchmarks' run.sh.
# wait_port PORT PID: waits (up to 5 s) until 127.0.0.1:PORT accepts a
# connection; fails at once if PID has exited.
wait_port() {
  for _ in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
