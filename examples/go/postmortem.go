// The post-mortem's program as Go programmers write it once they know the
// loop-variable gotcha: objects arrive on a channel, each is started in a
// goroutine that runs a command and reads its output, and a WaitGroup waits
// for them. Its herd twin is ../postmortem.c.
package main

import (
	"fmt"
	"os/exec"
	"sync"
)

type Object struct {
	Name string
}

func produce(n int) <-chan *Object {
	ch := make(chan *Object)
	go func() {
		defer close(ch)
		for i := 0; i < n; i++ {
			ch <- &Object{Name: fmt.Sprintf("object-%d", i)}
		}
	}()
	return ch
}

func (v *Object) Start() {
	out, err := exec.Command("echo", v.Name).Output()
	if err != nil {
		fmt.Printf("%s: %v\n", v.Name, err)
		return
	}
	fmt.Printf("%s said: %s", v.Name, out)
}

func main() {
	var wg sync.WaitGroup
	for v := range produce(20) {
		fmt.Printf("Processing: %v\n", v.Name)
		wg.Add(1)
		go func(v *Object) {
			defer wg.Done()
			v.Start()
			fmt.Printf("Finished: %v\n", v.Name)
		}(v)
	}
	wg.Wait()
}
