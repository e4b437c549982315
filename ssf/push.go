package ssf

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ContentType is the media type of a pushed SET (RFC 8417 §7.2, required
// on the request by RFC 8935 §2.1).
const ContentType = "application/secevent+jwt"

// ServeHTTP is the RFC 8935 push endpoint (route it as POST /ssf/events).
//
// Answers:
//   - 202 Accepted, empty body: the SET is valid and every revocation it
//     calls for was applied (RFC 8935 §2.2). A SET whose events revoke
//     nothing (unknown event types) is accepted too.
//   - 400 with the RFC 8935 §2.3 error object {"err", "description"}: the
//     SET is refused (*RefusedError); it changed nothing, and sending it
//     again will not help.
//   - 401 (authentication_failed): AuthorizationHeader is set and the
//     request did not carry it.
//   - 405, 413, 415 (invalid_request): not POST, body over MaxBodyBytes,
//     Content-Type not application/secevent+jwt. RFC 8935 §2.3 answers "a
//     general HTTP error condition" with the applicable HTTP status and
//     keeps 400 for a SET that fails parsing or validation; these carry
//     the same error object all the same, so a transmitter can log why.
//   - 503 with Retry-After: the SET could not be processed now (the
//     transmitter's keys are unreachable, the replay cache is full,
//     OnRevocation failed). Nothing was recorded; the transmitter should
//     deliver it again.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	reason := r.serve(w, req)
	if o := r.cfg.Observer; o != nil {
		o.Push(reason)
	}
}

// serve is ServeHTTP; it returns "" for an accepted SET, else why not.
func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) Reason {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(w, http.StatusMethodNotAllowed, refused(CodeInvalidRequest, ReasonMethod, "SETs are delivered with POST (RFC 8935 §2.1)"))
		return ReasonMethod
	}
	if want := r.cfg.AuthorizationHeader; want != "" {
		got := req.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			scheme, _, _ := strings.Cut(want, " ")
			w.Header().Set("WWW-Authenticate", scheme)
			r.refuse(w, http.StatusUnauthorized, refused(CodeAuthenticationFailed, ReasonAuthorization, "the request does not carry the Authorization header this receiver was configured with"))
			return ReasonAuthorization
		}
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != ContentType {
		r.refuse(w, http.StatusUnsupportedMediaType, refused(CodeInvalidRequest, ReasonContentType, "the Content-Type must be "+ContentType+" (RFC 8935 §2.1)"))
		return ReasonContentType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.refuse(w, http.StatusRequestEntityTooLarge, refused(CodeInvalidRequest, ReasonTooLarge, "the SET is larger than this receiver accepts"))
			return ReasonTooLarge
		}
		r.refuse(w, http.StatusBadRequest, refused(CodeInvalidRequest, ReasonMalformed, "the request body could not be read"))
		return ReasonMalformed
	}
	_, err = r.Receive(req.Context(), body)
	var ref *RefusedError
	var un *UnavailableError
	switch {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		return ""
	case errors.As(err, &ref):
		r.refuse(w, http.StatusBadRequest, ref)
		return ref.Reason
	case errors.As(err, &un):
		w.Header().Set("Retry-After", retryAfter(un.RetryAfter))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		return un.Reason
	default: // the push was abandoned (the request's context ended)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return ReasonAbandoned
	}
}

// errorBody is the RFC 8935 §2.3 failure response.
type errorBody struct {
	Err         Code   `json:"err"`
	Description string `json:"description,omitempty"`
}

func (r *Receiver) refuse(w http.ResponseWriter, status int, e *RefusedError) {
	if status != http.StatusBadRequest { // 400s were logged by Receive
		r.log.Info("ssf: push refused", "status", status, "code", e.Code, "reason", e.Reason)
	}
	b, _ := json.Marshal(errorBody{Err: e.Code, Description: e.Description})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// retryAfter renders d as RFC 9110 §10.2.3 delay-seconds, at least 1 and at
// most an hour.
func retryAfter(d time.Duration) string {
	s := math.Ceil(d.Seconds())
	return strconv.Itoa(int(min(max(s, 1), 3600)))
}
