// The benchmarks, each the twin of the function of the same name in
// bench/bench-core.c. herd's scope (open, spawn into it, close) is Go's
// sync.WaitGroup (Add(1) per go statement, Wait); herd_yield is
// runtime.Gosched; a task parked on a herd_wg is a goroutine blocked on a
// channel receive.
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	spawnTasks   = 1000000
	skynetLeaves = 1000000
	skynetSum    = 499999500000 // 0 + 1 + ... + 999,999
	yields       = 10000000
	memTasks     = 100000
	memWarmup    = 1000
	parkTimeout  = 60 * time.Second
	pollInterval = 5 * time.Millisecond
)

func nsSince(t0 time.Time) float64 {
	return float64(time.Since(t0).Nanoseconds())
}

// ---------------------------------------------------------------- spawn

func spawnTask(wg *sync.WaitGroup, i int) {
	wg.Done()
}

func spawnOnce(run int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < spawnTasks; i++ {
		wg.Add(1)
		go spawnTask(&wg, i)
	}
	wg.Wait()
	return nsSince(t0) / spawnTasks
}

func benchSpawn() float64 {
	return medianOf("spawn", spawnOnce)
}

// ---------------------------------------------------------------- skynet

// node is what a goroutine of the tree gets, as herd's struct node.
type node struct {
	num, size int64
	parent    *int64          // the parent's sum
	done      *sync.WaitGroup // the parent's wait group
}

// accum is where an inner node's children report: herd keeps the sum in
// the node's own argument and waits for the children with a scope.
type accum struct {
	sum int64
	wg  sync.WaitGroup
}

func skynet(n node) {
	if n.size == 1 {
		atomic.AddInt64(n.parent, n.num)
	} else {
		skynetChildren(n)
	}
	n.done.Done()
}

func skynetChildren(n node) {
	a := new(accum)
	size := n.size / 10
	for i := int64(0); i < 10; i++ {
		a.wg.Add(1)
		go skynet(node{n.num + i*size, size, &a.sum, &a.wg})
	}
	a.wg.Wait()
	atomic.AddInt64(n.parent, atomic.LoadInt64(&a.sum))
}

func skynetOnce(run int) float64 {
	var total int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(1)
	go skynet(node{0, skynetLeaves, &total, &wg})
	wg.Wait()
	t := nsSince(t0)
	if s := atomic.LoadInt64(&total); s != skynetSum {
		fail("skynet: sum %d, expected %d", s, skynetSum)
	}
	return t / 1e6
}

func benchSkynet() float64 {
	return medianOf("skynet", skynetOnce)
}

// ---------------------------------------------------------------- yield

// The warm-up checks that the two goroutines do take turns.
var (
	yieldLast   int32 // id of the last goroutine that ran
	yieldMisses int64 // yields after which it still was
)

func yieldTask(n int, id int32, wg *sync.WaitGroup) {
	for i := 0; i < n; i++ {
		runtime.Gosched()
	}
	wg.Done()
}

func yieldCheckTask(n int, id int32, wg *sync.WaitGroup) {
	var misses int64
	for i := 0; i < n; i++ {
		atomic.StoreInt32(&yieldLast, id)
		runtime.Gosched()
		if atomic.LoadInt32(&yieldLast) == id {
			misses++
		}
	}
	atomic.AddInt64(&yieldMisses, misses)
	wg.Done()
}

func yieldOnce(run int) float64 {
	task := yieldTask
	if run == 0 {
		task = yieldCheckTask
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for id := int32(0); id < 2; id++ {
		wg.Add(1)
		go task(yields/2, id, &wg)
	}
	wg.Wait()
	return nsSince(t0) / yields
}

func benchYield() float64 {
	runtime.GOMAXPROCS(1)
	v := medianOf("yield", yieldOnce)
	// Besides the last yield of the goroutine that ends second, which finds
	// no one to switch to, some processes see a few percent more: Go's
	// scheduler looks at its global queue first every 61st time, and the
	// yielder may be alone there.
	logf("yield: warm-up: %d of %d yields did not switch goroutines",
		atomic.LoadInt64(&yieldMisses), yields)
	return v
}

// ---------------------------------------------------------------- mem-parked

func parkedTask(ch chan struct{}, started *int64) {
	atomic.AddInt64(started, 1)
	<-ch
}

// waitGoroutines polls until cond holds, or fails after parkTimeout.
func waitGoroutines(what string, cond func() bool) {
	deadline := time.Now().Add(parkTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			fail("%s: %d goroutines after %v", what,
				runtime.NumGoroutine(), parkTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// waitAlone waits until the goroutines of an earlier round have exited.
func waitAlone(what string) {
	waitGoroutines(what, func() bool { return runtime.NumGoroutine() == 1 })
}

// parkedRound blocks n goroutines on a channel receive and returns the RSS
// and page-table bytes they add. NumGoroutine counts goroutines that exist,
// parked or not, so each also counts itself in before blocking: once all
// have, they are parked (or about to be, their memory already in use).
func parkedRound(n int) (rss, pte int64) {
	ch := make(chan struct{})
	var started int64
	waitAlone("mem-parked")
	before := memNow()
	for i := 0; i < n; i++ {
		go parkedTask(ch, &started)
	}
	waitGoroutines("mem-parked", func() bool {
		return runtime.NumGoroutine() >= n+1 &&
			atomic.LoadInt64(&started) == int64(n)
	})
	after := memNow()
	logf("mem-parked: GOMAXPROCS %d, %d goroutines", runtime.GOMAXPROCS(0),
		runtime.NumGoroutine())
	close(ch)
	waitAlone("mem-parked")
	return after.sub(before)
}

func benchMemParked() float64 {
	parkedRound(memWarmup)
	rss, pte := parkedRound(memTasks)
	logPTE("mem-parked", pte, memTasks)
	return float64(rss) / memTasks
}

// ---------------------------------------------------------------- mem-spawned

// spawnedTask blocks, so that one that runs before the measurement (the
// spawning goroutine may be preempted after 10 ms) keeps its memory in use.
func spawnedTask(ch chan struct{}, ran *int64) {
	atomic.AddInt64(ran, 1)
	<-ch
}

// spawnedRound spawns n goroutines without yielding, on one P, and returns
// the RSS and page-table bytes they add.
func spawnedRound(n int) (rss, pte int64) {
	ch := make(chan struct{})
	var ran int64
	waitAlone("mem-spawned")
	before := memNow()
	for i := 0; i < n; i++ {
		go spawnedTask(ch, &ran)
	}
	after := memNow()
	logf("mem-spawned: GOMAXPROCS %d, %d goroutines, %d of %d ran before "+
		"the measurement", runtime.GOMAXPROCS(0), runtime.NumGoroutine(),
		atomic.LoadInt64(&ran), n)
	close(ch)
	waitAlone("mem-spawned")
	return after.sub(before)
}

func benchMemSpawned() float64 {
	runtime.GOMAXPROCS(1)
	spawnedRound(memWarmup)
	rss, pte := spawnedRound(memTasks)
	logPTE("mem-spawned", pte, memTasks)
	return float64(rss) / memTasks
}
