// Package httpserver builds the http.Server every listener of the gateway is
// served by.
package httpserver

import (
	"log/slog"
	"net/http"
	"time"
)

// New is the http.Server the gateway is served by, with bounds on
// what a slow or hostile client can hold open. main.go and the bench's
// servers both use it, so that the bench measures the production listener.
func New(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
