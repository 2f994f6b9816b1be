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

var (
	benchMu      sync.Mutex
	mutexCounter int64 // under benchMu
)

// ---------------------------------------------------------------- mutex-uncontended

func uncontendedOnce(run int) float64 {
	mutexCounter = 0
	t0 := time.Now()
	for i := 0; i < uncontendedOps; i++ {
		benchMu.Lock()
		mutexCounter++
		benchMu.Unlock()
	}
	t := nsSince(t0)
	if mutexCounter != uncontendedOps {
		fail("mutex-uncontended: counter %d, expected %d", mutexCounter, uncontendedOps)
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
		benchMu.Lock()
		mutexCounter++
		benchMu.Unlock()
	}
}

func contendedOnce(run int) float64 {
	var wg sync.WaitGroup
	mutexCounter = 0
	t0 := time.Now()
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go lockerTask(contendedOps/2, &wg)
	}
	wg.Wait()
	t := nsSince(t0)
	if mutexCounter != contendedOps {
		fail("mutex-contended: counter %d, expected %d", mutexCounter, contendedOps)
	}
	return t / contendedOps
}

func benchMutexContended() float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(mutexProcs))
	return medianOf("mutex-contended", contendedOnce)
}
