package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/inspect"
)

// inspection is what -inspect asks of the overhead scenario's engine runs:
// nothing (the zero value), the inspector (package inspect) mounted on a
// loopback HTTP server that nobody requests, or also polled: state.json
// requested every interval, as an open page does.
type inspection struct {
	mounted bool
	every   time.Duration // > 0: poll state.json this often
}

func parseInspection(s string) (inspection, error) {
	switch s {
	case "", "off":
		return inspection{}, nil
	case "mounted":
		return inspection{mounted: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return inspection{}, fmt.Errorf("-inspect %q: off, mounted, or a polling interval such as 1s", s)
	}
	return inspection{mounted: true, every: d}, nil
}

// note describes the inspection for a result's note.
func (in inspection) note(polls int64) string {
	switch {
	case in.every > 0:
		return fmt.Sprintf("inspector polled every %v (%d polls)", in.every, polls)
	case in.mounted:
		return "inspector mounted, not polled"
	}
	return ""
}

// mount serves eng's inspection on a loopback listener and, with every,
// polls it. stop ends both and returns the number of polls made.
func (in inspection) mount(eng *orderly.Engine) (stop func() int64, err error) {
	h, err := inspect.New(eng)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/orderly/", http.StripPrefix("/orderly", h))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	// Owned by mount's caller through stop.
	go func() { served <- srv.Serve(ln) }()
	var polls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	// Owned by stop: polls until cancelled.
	go func() {
		defer close(polled)
		if in.every <= 0 {
			return
		}
		url := "http://" + ln.Addr().String() + "/orderly/state.json"
		tick := time.NewTicker(in.every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if res, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				polls.Add(1)
			}
		}
	}()
	return func() int64 {
		cancel()
		<-polled
		_ = srv.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("bench: inspection server:", err)
		}
		return polls.Load()
	}, nil
}
