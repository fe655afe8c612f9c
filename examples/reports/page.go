package main

import (
	"embed"
	"io/fs"
	"net/http"
)

// The page: plain HTML, CSS and JavaScript embedded in the binary, no
// build step and nothing loaded from elsewhere.
//
//go:embed web
var webFiles embed.FS

func pageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Everything the page needs comes from this server.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		page, err := webFiles.ReadFile("web/index.html")
		if err != nil {
			panic(err) // embedded: always there
		}
		_, _ = w.Write(page)
	})
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}
