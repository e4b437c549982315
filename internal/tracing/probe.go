package tracing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/mcp-gateway/mcp-gateway/internal/urlrule"
)

// ProbeError says why the collector did not accept an export. Its text
// never holds the headers.
type ProbeError struct {
	// Status is the collector's HTTP status; 0 when none came.
	Status int
	Err    error
}

func (e *ProbeError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return fmt.Sprintf("the collector refused the export (HTTP %d): check OTEL_EXPORTER_OTLP_HEADERS", e.Status)
	case e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed:
		return fmt.Sprintf("nothing takes OTLP traces at this URL (HTTP %d): OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL (/v1/traces is appended), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT the full one", e.Status)
	case e.Status != 0:
		return fmt.Sprintf("the collector answered HTTP %d", e.Status)
	}
	return fmt.Sprintf("the collector cannot be reached: %v", e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe sends the collector an empty export, as the exporter would send
// spans (same URL, headers, encoding, no redirects), and reports whether
// it was accepted: for the configuration doctor. An empty
// ExportTraceServiceRequest is a valid request that records nothing.
func Probe(ctx context.Context, cfg Config) error {
	if !cfg.Enabled() {
		return errors.New("tracing is off")
	}
	body, ctype := []byte{}, "application/x-protobuf" // the empty message
	if cfg.JSON {
		body, ctype = []byte("{}"), "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &ProbeError{Err: err}
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", ctype)
	client := &http.Client{
		Transport:     &http.Transport{},
		CheckRedirect: urlrule.NoRedirects,
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return &ProbeError{Err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return &ProbeError{Status: resp.StatusCode}
	}
	return nil
}
