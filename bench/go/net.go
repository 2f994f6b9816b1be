// The I/O and timer benchmarks, each the twin of the benchmark of the same
// name in bench/bench-io.c. herd's tasks are goroutines and its scopes
// sync.WaitGroups; herd_read, herd_write_all, herd_accept and herd_connect
// are the net package's Read, Write, Accept and Dial (which sets
// TCP_NODELAY, as bench-io.c does by hand); herd_sleep to a deadline is
// time.Sleep(time.Until(deadline)). Both use every core.
package main

import (
	"bytes"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	conns       = 100
	msgs        = 1000
	msgSize     = 64
	echoBuf     = 1024
	echoTimeout = 60 * time.Second // per run: a hang fails, loudly

	timerTasks = 100000
	timerMin   = 1 * time.Millisecond
	timerSpan  = 99 * time.Millisecond  // deadlines in [min, min + span]
	timerLead  = 500 * time.Millisecond // from the first spawn to the start
	timerSeed  = 0x243f6a8885a308d3
)

// ---------------------------------------------------------------- net-echo

// echoRun is what one run shares with its goroutines.
type echoRun struct {
	addr     string
	deadline time.Time
	echoed   int64 // bytes the servers wrote back
	checked  int64 // echoes the clients compared
}

// echoServer echoes what it reads on c until end of file, then closes c.
func echoServer(r *echoRun, c net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	if err := c.SetDeadline(r.deadline); err != nil {
		fail("net-echo: %v", err)
	}
	buf := make([]byte, echoBuf)
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				fail("net-echo: server: %v", werr)
			}
			total += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("net-echo: server: %v", err)
		}
	}
	atomic.AddInt64(&r.echoed, total)
	if err := c.Close(); err != nil {
		fail("net-echo: server: %v", err)
	}
}

// echoListener accepts conns connections, a server goroutine for each, and
// returns after them.
func echoListener(r *echoRun, ln net.Listener, done *sync.WaitGroup) {
	defer done.Done()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		c, err := ln.Accept()
		if err != nil {
			fail("net-echo: accept: %v", err)
		}
		wg.Add(1)
		go echoServer(r, c, &wg)
	}
	wg.Wait()
}

// fill makes message m of connection c, as bench-io.c's fill.
func fill(msg []byte, c, m int) {
	for j := range msg {
		msg[j] = byte(c*131 + m*7 + j)
	}
}

// echoClient connects, sends msgs messages one at a time and checks each
// echo.
func echoClient(r *echoRun, c int, done *sync.WaitGroup) {
	defer done.Done()
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		fail("net-echo: dial: %v", err)
	}
	if err := conn.SetDeadline(r.deadline); err != nil {
		fail("net-echo: %v", err)
	}
	out := make([]byte, msgSize)
	in := make([]byte, msgSize)
	for m := 0; m < msgs; m++ {
		fill(out, c, m)
		if _, err := conn.Write(out); err != nil {
			fail("net-echo: client: %v", err)
		}
		if _, err := io.ReadFull(conn, in); err != nil {
			fail("net-echo: client: %v", err)
		}
		if !bytes.Equal(in, out) {
			fail("net-echo: connection %d, message %d: the echo "+
				"differs from what was sent", c, m)
		}
	}
	atomic.AddInt64(&r.checked, msgs)
	if err := conn.Close(); err != nil {
		fail("net-echo: client: %v", err)
	}
}

func echoOnce(run int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("net-echo: listen: %v", err)
	}
	r := &echoRun{addr: ln.Addr().String(),
		deadline: time.Now().Add(echoTimeout)}
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(1 + conns)
	go echoListener(r, ln, &wg)
	for c := 0; c < conns; c++ {
		go echoClient(r, c, &wg)
	}
	wg.Wait()
	t := nsSince(t0)
	if err := ln.Close(); err != nil {
		fail("net-echo: %v", err)
	}
	if r.checked != conns*msgs || r.echoed != conns*msgs*msgSize {
		fail("net-echo: %d echoes checked (expected %d), %d bytes "+
			"echoed (expected %d)", r.checked, conns*msgs, r.echoed,
			conns*msgs*msgSize)
	}
	return t / 1e6
}

func benchNetEcho() float64 {
	return medianOf("net-echo", echoOnce)
}

// ---------------------------------------------------------------- timers

// splitmix64 is bench-io.c's: the same deadlines in both twins.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// timerRun is what one run shares with its goroutines.
type timerRun struct {
	lat   []int64 // ns late, per goroutine; -1 until it woke
	woken int64
	late  int64 // goroutines that went to sleep after their deadline
}

func sleeper(r *timerRun, i int, deadline time.Time, wg *sync.WaitGroup) {
	if !time.Now().Before(deadline) {
		atomic.AddInt64(&r.late, 1)
	}
	time.Sleep(time.Until(deadline))
	r.lat[i] = time.Since(deadline).Nanoseconds()
	atomic.AddInt64(&r.woken, 1)
	wg.Done()
}

// percentileUs is the pct-th percentile (nearest rank) of the sorted v, in
// microseconds.
func percentileUs(v []int64, pct int) float64 {
	rank := (len(v)*pct + 99) / 100
	return float64(v[rank-1]) / 1e3
}

// timerFigures holds each run's figures, printed after the runs.
type timerFigures struct {
	p50, p99, max, spawnMs float64
	late                   int64
}

func timersOnce(pct int, figs *[maxRuns + 1]timerFigures, run int) float64 {
	r := &timerRun{lat: make([]int64, timerTasks)}
	state := uint64(timerSeed)
	var wg sync.WaitGroup
	t0 := time.Now()
	start := t0.Add(timerLead)
	for i := 0; i < timerTasks; i++ {
		d := timerMin + time.Duration(splitmix64(&state)%
			uint64(timerSpan+1))
		r.lat[i] = -1
		wg.Add(1)
		go sleeper(r, i, start.Add(d), &wg)
	}
	spawned := time.Since(t0)
	wg.Wait()
	if r.woken != timerTasks {
		fail("timers: %d of %d goroutines woke", r.woken, timerTasks)
	}
	for i, l := range r.lat {
		if l < 0 {
			fail("timers: goroutine %d woke %d ns early (or never)", i, -l)
		}
	}
	sort.Slice(r.lat, func(a, b int) bool { return r.lat[a] < r.lat[b] })
	f := timerFigures{percentileUs(r.lat, 50), percentileUs(r.lat, 99),
		float64(r.lat[timerTasks-1]) / 1e3,
		float64(spawned.Nanoseconds()) / 1e6, r.late}
	figs[run] = f
	if pct == 99 {
		return f.p99
	}
	return f.p50
}

func benchTimers(pct int) float64 {
	var figs [maxRuns + 1]timerFigures
	name := "timers-p50"
	if pct == 99 {
		name = "timers-p99"
	}
	v := medianOf(name, func(run int) float64 {
		return timersOnce(pct, &figs, run)
	})
	for run, f := range figs[:reps()+1] {
		logf("timers: run %d: p50 %.1f us, p99 %.1f us, max %.1f us; "+
			"spawned in %.1f ms, %d goroutines slept after their "+
			"deadline", run, f.p50, f.p99, f.max, f.spawnMs, f.late)
		if f.late != 0 {
			logf("timers: run %d: warning: the goroutines started "+
				"late (a loaded machine?); their latencies "+
				"count it", run)
		}
	}
	return v
}

func benchTimersP50() float64 {
	return benchTimers(50)
}

func benchTimersP99() float64 {
	return benchTimers(99)
}
