package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/inspect"
)

// inspectionMux serves eng's inspection (package inspect) under /orderly/:
// the page at /orderly/ and the snapshot at /orderly/state.json.
func inspectionMux(eng *orderly.Engine, opts ...inspect.Option) (*http.ServeMux, error) {
	h, err := inspect.New(eng, opts...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/orderly/", http.StripPrefix("/orderly", h))
	return mux, nil
}

// serveInspection serves eng's inspection at o.httpAddr until the
// returned function is called.
func serveInspection(eng *orderly.Engine, o options, out io.Writer) (stop func(), err error) {
	var opts []inspect.Option
	if o.release {
		opts = append(opts, inspect.WithRelease())
	}
	mux, err := inspectionMux(eng, opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("-http: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	// Owned by run, which stops it (stop) before it returns.
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "inspection: http://%s/orderly/ (snapshot: http://%s/orderly/state.json)\n", ln.Addr(), ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(out, "inspection server:", err)
		}
	}, nil
}

// hold keeps the engine running for d after the last record (or until
// ctx is done), so that its inspection can be looked at.
func hold(ctx context.Context, d time.Duration, out io.Writer, ran <-chan struct{}, runErr *error) error {
	if d <= 0 {
		return nil
	}
	fmt.Fprintf(out, "holding for %v: the engine keeps running\n", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-ran:
		return fmt.Errorf("engine stopped while holding: %v", *runErr)
	}
	return nil
}
