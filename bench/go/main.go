// Command go-bench is the Go twin of bench/bench-core.c, bench/bench-sync.c,
// bench/bench-proc.c and bench/bench-io.c: the same benchmarks (spawn,
// skynet, yield, mem-parked, mem-spawned in bench.go; chan-pingpong, chan-buffered,
// chan-2x2, select in chan.go; mutex-uncontended, mutex-contended in
// mutex.go; proc-spawn, proc-spawn-par in proc.go; net-echo, timers-p50,
// timers-p99 in net.go), doing the same work with goroutines, sync.Mutex,
// os/exec, the net package and time.Sleep, so that bench/run.sh can compare
// herd with Go.
//
// Usage: go-bench <benchmark>. A benchmark prints one line, "<value> <unit>",
// on stdout, and its diagnostics on stderr. Timings run once to warm up, then
// BENCH_REPS times (5 when it is unset), and print the median; memory is
// measured once, after a warm-up of 1,000 goroutines. Standard library only.
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
)

const maxRuns = 100

// reps is BENCH_REPS, the timed runs of a benchmark (1 to maxRuns), or 5.
func reps() int {
	s := os.Getenv("BENCH_REPS")
	if s == "" {
		return 5
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxRuns {
		fail("BENCH_REPS=%s: expected 1 to %d", s, maxRuns)
	}
	return n
}

type bench struct {
	name     string
	unit     string
	decimals int            // printed after the point
	run      func() float64 // measures; prints diagnostics on stderr
}

var benches = []bench{
	{"spawn", "ns/task", 1, benchSpawn},
	{"skynet", "ms", 1, benchSkynet},
	{"yield", "ns/switch", 1, benchYield},
	{"mem-parked", "bytes/task", 0, benchMemParked},
	{"mem-spawned", "bytes/task", 0, benchMemSpawned},
	{"chan-pingpong", "ns/roundtrip", 1, benchPingpong},
	{"chan-buffered", "ns/msg", 1, benchBuffered},
	{"chan-2x2", "ns/msg", 1, benchTwoByTwo},
	{"select", "ns/op", 1, benchSelect},
	{"mutex-uncontended", "ns/op", 2, benchMutexUncontended},
	{"mutex-contended", "ns/op", 2, benchMutexContended},
	{"proc-spawn", "us/proc", 1, benchProcSpawn},
	{"proc-spawn-par", "us/proc", 1, benchProcSpawnPar},
	{"net-echo", "ms", 1, benchNetEcho},
	{"timers-p50", "us", 1, benchTimersP50},
	{"timers-p99", "us", 1, benchTimersP99},
}

func main() {
	if len(os.Args) == 2 {
		for _, b := range benches {
			if b.name == os.Args[1] {
				v := b.run()
				fmt.Printf("%.*f %s\n", b.decimals, v, b.unit)
				return
			}
		}
	}
	fmt.Fprint(os.Stderr, "usage: go-bench <benchmark>\nbenchmarks:")
	for _, b := range benches {
		fmt.Fprintf(os.Stderr, " %s", b.name)
	}
	fmt.Fprintln(os.Stderr)
	os.Exit(2)
}

// fail reports a broken benchmark and exits with status 1.
func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-bench: "+format+"\n", args...)
	os.Exit(1)
}

// logf prints a diagnostic line on stderr.
func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// medianOf runs once(0) to warm up, then once(1) .. once(reps()), and
// returns the median of those (of an even count, the mean of the middle two).
func medianOf(name string, once func(run int) float64) float64 {
	fmt.Fprintf(os.Stderr, "%s: %s, GOMAXPROCS %d, warm-up %.2f, runs",
		name, runtime.Version(), runtime.GOMAXPROCS(0), once(0))
	v := make([]float64, reps())
	for i := range v {
		v[i] = once(i + 1)
		fmt.Fprintf(os.Stderr, " %.2f", v[i])
	}
	fmt.Fprintln(os.Stderr)
	sort.Float64s(v)
	n := len(v)
	if n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[n/2]
}

// statusBytes returns the field key ("VmRSS", "VmPTE") of /proc/self/status,
// in bytes.
func statusBytes(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("%v", err)
	}
	prefix := []byte(key + ":")
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.HasPrefix(line, prefix) {
			continue
		}
		f := bytes.Fields(line[len(prefix):])
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			fail("/proc/self/status: %s: %v", key, err)
		}
		return kb * 1024
	}
	fail("/proc/self/status: no %s", key)
	return 0
}

// mem is the memory of the process: resident, and in page tables (bytes).
type mem struct {
	rss, pte int64
}

func memNow() mem {
	return mem{statusBytes("VmRSS"), statusBytes("VmPTE")}
}

func (m mem) sub(o mem) (rss, pte int64) {
	return m.rss - o.rss, m.pte - o.pte
}

func logPTE(name string, pte int64, n int) {
	logf("%s: page tables %.1f bytes/task (VmPTE %+d KiB)", name,
		float64(pte)/float64(n), pte/1024)
}
