// Package flushjson sends a JSON answer to the client as soon as a handler
// has written it completely.
package flushjson

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
)

// Wrap sends a JSON answer to the client as soon as the SDK has
// written it, instead of when the SDK's handler returns.
//
// In JSON response mode the SDK writes the whole answer in one Write. Its
// handler then closes the per-request session, and that waits for the
// session's own goroutines to end. Until the handler returns, net/http holds
// the answer in its buffer, because it cannot know the body is complete.
// Under load those goroutines wait their turn for a CPU, and the client
// waits with them. On the cache-hostile bench (issue 4, 32 connections, one
// CPU) this waiting was worth about 10% of throughput and 1-4 ms at p50.
//
// A body that is exactly one complete JSON value cannot be followed by
// anything that keeps it valid JSON. So such a first Write, if nothing
// committed the header before it, gets a Content-Length and is flushed at
// once. Everything else passes through untouched: SSE streams, bodies
// written in several pieces, answers whose header was already sent (the
// SDK's JSON-RPC errors), and answers with no body (202 for notifications).
//
// The gateway and the bench's baseline (the SDK's handler with no
// authentication) both send their answers this way, so that the
// side-by-side comparison measures the authentication layer and not this.
func Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&completeJSONWriter{ResponseWriter: w}, r)
	})
}

type completeJSONWriter struct {
	http.ResponseWriter
	committed bool // the header was sent, or the first Write seen
}

func (w *completeJSONWriter) WriteHeader(status int) {
	w.committed = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *completeJSONWriter) Write(p []byte) (int, error) {
	if w.committed {
		return w.ResponseWriter.Write(p)
	}
	w.committed = true
	h := w.Header()
	if h.Get("Content-Length") != "" || !isJSONMediaType(h.Get("Content-Type")) || !json.Valid(p) {
		return w.ResponseWriter.Write(p)
	}
	h.Set("Content-Length", strconv.Itoa(len(p)))
	n, err := w.ResponseWriter.Write(p)
	if err != nil {
		return n, err
	}
	return n, http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush keeps SSE streaming working through the wrapper.
func (w *completeJSONWriter) Flush() {
	w.committed = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *completeJSONWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// isJSONMediaType reports whether a Content-Type is application/json, with
// or without parameters.
func isJSONMediaType(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
