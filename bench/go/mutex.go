// The mutex benchmarks, each the twin of the function of the same name in
// bench/bench-sync.c: Go's sync.Mutex against herd_mutex, with GOMAXPROCS 2
// as herd's 2 workers. Each checks the counter.
package main

import (
	"runtime"
	"sync"
	"time"
)

const (
	uncontendedOps = 20000000
	contendedOps   = 10000000
	mutexProcs     = 2
)

// The mutex and the counter it guards, on cache lines of their own (the
// counter 64 bytes after the mutex), as in bench-sync.c: on one line, a
// contended lock moves one line, not two. (Two plain variables had them on
// adjacent lines here, and on one line in bench-sync.c.)
var guarded struct {
	mu      sync.Mutex
	_       [56]byte
	counter int64 // under mu
}

// ---------------------------------------------------------------- mutex-uncontended

func uncontendedOnce(run int) float64 {
	guarded.counter = 0
	t0 := time.Now()
	for i := 0; i < uncontendedOps; i++ {
		guarded.mu.Lock()
		guarded.counter++
		guarded.mu.Unlock()
	}
	t := nsSince(t0)
	if guarded.counter != uncontendedOps {
		fail("mutex-uncontended: counter %d, expected %d", guarded.counter, uncontendedOps)
	}
	return t / uncontendedOps
}

func benchMutexUncontended() float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(mutexProcs))
	return medianOf("mutex-uncontended", uncontendedOnce)
}

// ---------------------------------------------------------------- mutex-contended

func lockerTask(n int, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; i < n; i++ {
		guarded.mu.Lock()
		guarded.counter++
		guarded.mu.Unlock()
	}
}

func contendedOnce(run int) float64 {
	var wg sync.WaitGroup
	guarded.counter = 0
	t0 := time.Now()
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go lockerTask(contendedOps/2, &wg)
	}
	wg.Wait()
	t := nsSince(t0)
	if guarded.counter != contendedOps {
		fail("mutex-contended: counter %d, expected %d", guarded.counter, contendedOps)
	}
	return t / contendedOps
}

func benchMutexContended() float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(mutexProcs))
	return medianOf("mutex-contended", contendedOnce)
}
