// The process benchmarks, each the twin of the benchmark of the same name in
// bench/bench-proc.c: /bin/true run with os/exec (exec.Command and Output,
// herd_proc_output's model: stdout on a pipe read until end of file, then
// Wait), 2,000 times. As in herd, the child's stdin and stderr are the
// parent's own (os.Stdin and os.Stderr, which os/exec hands over as they
// are; left nil, they would be /dev/null, opened anew for each process, and
// a pipe collected for the error). herd's 8 tasks are 8 goroutines. There
// is no twin of proc-spawn-raw, which is plain C.
package main

import (
	"os"
	"os/exec"
	"sync"
	"time"
)

const (
	procs    = 2000
	parTasks = 8
	truePath = "/bin/true"
)

// runTrue runs process number i of benchmark name and checks it: exit
// status 0, nothing written on its stdout.
func runTrue(name string, i int) {
	cmd := exec.Command(truePath)
	cmd.Stdin = os.Stdin
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fail("%s: process %d: %v", name, i, err)
	}
	if len(out) != 0 {
		fail("%s: process %d (pid %d): wrote %d bytes, expected none",
			name, i, cmd.Process.Pid, len(out))
	}
}

// usPerProc is the time since t0 in microseconds per process.
func usPerProc(t0 time.Time) float64 {
	return float64(time.Since(t0).Nanoseconds()) / 1000 / procs
}

// ---------------------------------------------------------------- proc-spawn

func procSpawnOnce(run int) float64 {
	t0 := time.Now()
	for i := 0; i < procs; i++ {
		runTrue("proc-spawn", i)
	}
	return usPerProc(t0)
}

func benchProcSpawn() float64 {
	return medianOf("proc-spawn", procSpawnOnce)
}

// ---------------------------------------------------------------- proc-spawn-par

func spawner(first, n int, wg *sync.WaitGroup) {
	for i := first; i < first+n; i++ {
		runTrue("proc-spawn-par", i)
	}
	wg.Done()
}

func procSpawnParOnce(run int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	for t := 0; t < parTasks; t++ {
		wg.Add(1)
		go spawner(t*(procs/parTasks), procs/parTasks, &wg)
	}
	wg.Wait()
	return usPerProc(t0)
}

func benchProcSpawnPar() float64 {
	return medianOf("proc-spawn-par", procSpawnParOnce)
}
