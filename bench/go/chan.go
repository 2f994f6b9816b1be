// The channel benchmarks, each the twin of the function of the same name in
// bench/bench-core.c: Go's channels and select against herd_chan_* and
// herd_select. Each checks the sum of what it received.
package main

import (
	"sync"
	"time"
)

const (
	pingpongTrips = 1000000
	chanMsgs      = 10000000
	chanCap       = 128
	selectOps     = 2000000
)

// sumBelow is 0 + 1 + ... + (n - 1).
func sumBelow(n int64) int64 {
	return n * (n - 1) / 2
}

// ---------------------------------------------------------------- chan-pingpong

func pongTask(in <-chan int64, out chan<- int64) {
	for v := range in {
		out <- v
	}
}

func pingpongOnce(run int) float64 {
	in, out := make(chan int64), make(chan int64)
	done := make(chan struct{})
	go func() {
		pongTask(in, out)
		close(done)
	}()
	var sum int64
	t0 := time.Now()
	for i := int64(0); i < pingpongTrips; i++ {
		in <- i
		sum += <-out
	}
	t := nsSince(t0)
	close(in)
	<-done
	if sum != sumBelow(pingpongTrips) {
		fail("chan-pingpong: sum %d, expected %d", sum, sumBelow(pingpongTrips))
	}
	return t / pingpongTrips
}

func benchPingpong() float64 {
	return medianOf("chan-pingpong", pingpongOnce)
}

// ---------------------------------------------------------------- chan-buffered, chan-2x2

func producerTask(ch chan<- int64, first, n int64, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := first; i < first+n; i++ {
		ch <- i
	}
}

func consumerTask(ch <-chan int64, total *int64, mu *sync.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	var sum int64
	for v := range ch {
		sum += v
	}
	mu.Lock()
	*total += sum
	mu.Unlock()
}

// producersConsumers runs n producers and n consumers on one buffered
// channel and returns ns per message.
func producersConsumers(name string, n int64) float64 {
	ch := make(chan int64, chanCap)
	var prod, cons sync.WaitGroup
	var mu sync.Mutex
	var total int64
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		cons.Add(1)
		go consumerTask(ch, &total, &mu, &cons)
		prod.Add(1)
		go producerTask(ch, i*(chanMsgs/n), chanMsgs/n, &prod)
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	t := nsSince(t0)
	if total != sumBelow(chanMsgs) {
		fail("%s: sum %d, expected %d", name, total, sumBelow(chanMsgs))
	}
	return t / chanMsgs
}

func benchBuffered() float64 {
	return medianOf("chan-buffered", func(int) float64 {
		return producersConsumers("chan-buffered", 1)
	})
}

func benchTwoByTwo() float64 {
	return medianOf("chan-2x2", func(int) float64 {
		return producersConsumers("chan-2x2", 2)
	})
}

// ---------------------------------------------------------------- select

func selectOnce(run int) float64 {
	a, b := make(chan int64), make(chan int64)
	var wg sync.WaitGroup
	var sum int64
	var count [2]int64
	t0 := time.Now()
	for i, ch := range []chan int64{a, b} {
		wg.Add(1)
		go producerTask(ch, int64(i)*(selectOps/2), selectOps/2, &wg)
	}
	for i := 0; i < selectOps; i++ {
		select {
		case v := <-a:
			count[0]++
			sum += v
		case v := <-b:
			count[1]++
			sum += v
		}
	}
	t := nsSince(t0)
	wg.Wait()
	if sum != sumBelow(selectOps) || count[0] != count[1] {
		fail("select: sum %d (expected %d), cases %d and %d", sum,
			sumBelow(selectOps), count[0], count[1])
	}
	return t / selectOps
}

func benchSelect() float64 {
	return medianOf("select", selectOnce)
}
