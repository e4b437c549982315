package ssf

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"
)

// Event type URIs this receiver acts on. Each one says the subject's
// existing sessions or credentials can no longer be trusted, so the gateway
// must stop reusing what it cached about the subject and ask the
// authorization server again.
const (
	// EventSessionRevoked: CAEP 1.0 §3.1, "the session identified by the
	// subject has been revoked".
	EventSessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	// EventCredentialChange: CAEP 1.0 §3.3, a credential was created,
	// changed, revoked or deleted. Every change_type revokes: even "create"
	// (a second factor enrolled) may follow a takeover, and a revocation
	// here only costs one fresh introspection.
	EventCredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	// EventAccountDisabled: RISC 1.0 §2.3.
	EventAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	// EventAccountPurged: RISC 1.0 §2.2, the account was permanently deleted.
	EventAccountPurged = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	// EventSessionsRevoked: RISC 1.0 §2.11, all the account's sessions were
	// revoked. Deprecated there in favour of CAEP session-revoked, and still
	// sent by transmitters that predate it.
	EventSessionsRevoked = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"
)

// Revokes reports whether an event of this type makes the receiver revoke
// its subject. Other types (CAEP token-claims-change, RISC account-enabled,
// the SSF verification event, and any type this package does not know) are
// acknowledged and otherwise ignored: RFC 8935 §2.2 acknowledges a valid
// SET whatever the receiver does with it, and SSF 1.0 §4.1.5 leaves the
// processing of each event to the receiver.
func Revokes(eventType string) bool {
	switch eventType {
	case EventSessionRevoked, EventCredentialChange, EventAccountDisabled, EventAccountPurged, EventSessionsRevoked:
		return true
	}
	return false
}

// Subject identifier formats this receiver can revoke by (RFC 9493 §3.2).
const (
	// FormatIssSub: RFC 9493 §3.2.3, "iss" and "sub" as in an ID token.
	FormatIssSub = "iss_sub"
	// FormatEmail: RFC 9493 §3.2.2, an email address.
	FormatEmail = "email"
	// FormatOpaque: RFC 9493 §3.2.4, an identifier both parties agreed on
	// (typically the same value as the token's "sub").
	FormatOpaque = "opaque"
)

// Subject is one identifier of the principal an event is about, in one of
// the formats FormatIssSub, FormatEmail or FormatOpaque. Only the members of
// its format are set. Values are as the transmitter sent them: email
// addresses are not case-folded (RFC 9493 §3.2.2 does not define a
// canonical form), so a caller matching them decides how.
type Subject struct {
	Format string
	Iss    string // FormatIssSub
	Sub    string // FormatIssSub
	Email  string // FormatEmail
	ID     string // FormatOpaque
}

// Bounds on what an event may contain. The whole SET is already bounded by
// MaxBodyBytes; these keep one identifier or one event from being
// unreasonably large or numerous within it.
const (
	maxEventTypeLen  = 512  // an event type URI
	maxSubjectValue  = 1024 // one member of a subject identifier
	maxAliases       = 16   // identifiers in an "aliases" subject
	maxSubjectsPerEv = 32   // distinct identifiers one event may revoke
)

// event is one member of the SET's "events" claim, as far as this receiver
// understands it.
type event struct {
	Type     string
	Revokes  bool
	Subjects []Subject // for a revoking event: every supported identifier of its subject
	// NotActionable says why a revoking event revokes nothing although
	// it is well-formed: its subject uses only formats this receiver cannot
	// match, or a critical complex-subject member it cannot process.
	NotActionable string
	Time          time.Time // CAEP event_timestamp, if present
}

// errSubject is a subject that does not conform to RFC 9493 or SSF 1.0 §3.
var errSubject = errors.New("malformed subject identifier")

// parseEvents reads the "events" claim (RFC 8417 §2.2: a JSON object whose
// members are event type URIs, each with a JSON object as its value) and,
// for every event that revokes, its subject. The subject is taken from the
// event's own "subject" member, which CAEP and RISC events may carry (SSF
// 1.0 §3.1.1), and from the SET's top-level "sub_id" claim (SSF 1.0 §3.1,
// RFC 9493 §4.1); when both are present, every supported identifier of both
// is revoked, since each must name the same principal.
//
// critical lists complex-subject members that must be processed (SSF 1.0
// §3.6, from the transmitter's critical_subject_members); an event whose
// complex subject carries one this receiver does not process is discarded
// (it revokes nothing) as §3.6 requires.
func parseEvents(raw, subID json.RawMessage, maxEvents int, critical []string) ([]event, *RefusedError) {
	if len(raw) == 0 || isNull(raw) {
		return nil, refused(CodeInvalidRequest, ReasonEvents, `the SET has no "events" claim (RFC 8417 §2.2)`)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, refused(CodeInvalidRequest, ReasonEvents, `"events" is not a JSON object (RFC 8417 §2.2)`)
	}
	if len(members) == 0 {
		return nil, refused(CodeInvalidRequest, ReasonEvents, `"events" holds no event (RFC 8417 §2.2)`)
	}
	if len(members) > maxEvents {
		return nil, refused(CodeInvalidRequest, ReasonEvents, "the SET holds more events than this receiver accepts (SSF 1.0 §4.2.1: one event per SET)")
	}
	types := make([]string, 0, len(members))
	for t := range members {
		types = append(types, t)
	}
	slices.Sort(types) // a stable order for callers and tests
	events := make([]event, 0, len(types))
	for _, t := range types {
		if t == "" || len(t) > maxEventTypeLen {
			return nil, refused(CodeInvalidRequest, ReasonEvents, "an event type is empty or too long")
		}
		var payload map[string]json.RawMessage
		if err := json.Unmarshal(members[t], &payload); err != nil || payload == nil {
			return nil, refused(CodeInvalidRequest, ReasonEvents, "an event's payload is not a JSON object (RFC 8417 §2.2)")
		}
		ev := event{Type: t, Revokes: Revokes(t)}
		if !ev.Revokes {
			events = append(events, ev)
			continue
		}
		if ts, ok := payload["event_timestamp"]; ok {
			tm, err := numericDate(ts)
			if err != nil {
				return nil, refused(CodeInvalidRequest, ReasonEvents, "event_timestamp is not a number (CAEP 1.0 §2)")
			}
			ev.Time = tm
		}
		inEvent, hasInEvent := payload["subject"]
		hasInEvent = hasInEvent && !isNull(inEvent)
		hasSubID := len(subID) > 0 && !isNull(subID)
		if !hasInEvent && !hasSubID {
			return nil, refused(CodeInvalidRequest, ReasonSubject, `a revoking event has no subject: neither "sub_id" (SSF 1.0 §3.1) nor an event "subject"`)
		}
		for _, src := range [][]byte{inEvent, subID} {
			if len(src) == 0 || isNull(src) {
				continue
			}
			subs, why, err := parseSubject(src, critical)
			if err != nil {
				return nil, refused(CodeInvalidRequest, ReasonSubject, "a revoking event's subject does not conform to RFC 9493 / SSF 1.0 §3")
			}
			if why != "" && ev.NotActionable == "" {
				ev.NotActionable = why
			}
			for _, s := range subs {
				if !slices.Contains(ev.Subjects, s) {
					ev.Subjects = append(ev.Subjects, s)
				}
			}
		}
		if len(ev.Subjects) > maxSubjectsPerEv {
			return nil, refused(CodeInvalidRequest, ReasonSubject, "a revoking event names too many subject identifiers")
		}
		if len(ev.Subjects) > 0 {
			// One usable identifier is enough to act; what could not be
			// used is not a reason to revoke less.
			ev.NotActionable = ""
		} else if ev.NotActionable == "" {
			ev.NotActionable = "no supported subject identifier"
		}
		events = append(events, ev)
	}
	return events, nil
}

// parseSubject reads one subject identifier (RFC 9493 §3) or SSF 1.0 §3.3
// complex subject and returns its identifiers in the formats this receiver
// supports. A well-formed identifier in another format (phone_number,
// account, did, uri, jwt_id ...) yields no Subject and a reason, not an
// error: the transmitter did nothing wrong, the receiver just cannot match
// it. An error means the identifier does not conform (a supported format
// with a member missing or not a string, no format at all).
//
// RISC 1.0 §3.1: Google's RISC transmitter names the format "subject_type"
// (with the value "iss-sub" for iss_sub, as RFC 8417 §2.1.4's example does);
// that spelling is accepted when "format" is absent.
func parseSubject(raw []byte, critical []string) (subs []Subject, notActionable string, err error) {
	m, err := subjectObject(raw)
	if err != nil {
		return nil, "", err
	}
	format, legacy, err := subjectFormat(m)
	if err != nil {
		return nil, "", err
	}
	switch format {
	case "complex":
		if legacy {
			return nil, "", errSubject
		}
		return complexSubject(m, critical)
	case "aliases":
		if legacy {
			return nil, "", errSubject
		}
		return aliasesSubject(m)
	}
	s, ok, err := simpleSubject(format, m)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "unsupported subject format", nil
	}
	return []Subject{s}, "", nil
}

func subjectObject(raw []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errSubject
	}
	return m, nil
}

// subjectFormat returns the identifier's format: "format" (RFC 9493 §3),
// or else the legacy "subject_type" (RISC 1.0 §3.1), with "iss-sub" read as
// iss_sub.
func subjectFormat(m map[string]json.RawMessage) (format string, legacy bool, err error) {
	if raw, ok := m["format"]; ok {
		f, err := memberString(raw)
		return f, false, err
	}
	if raw, ok := m["subject_type"]; ok {
		f, err := memberString(raw)
		if f == "iss-sub" {
			f = FormatIssSub
		}
		return f, true, err
	}
	return "", false, errSubject
}

// simpleSubject reads an identifier of a supported format; ok is false for
// any other format.
func simpleSubject(format string, m map[string]json.RawMessage) (s Subject, ok bool, err error) {
	get := func(name string) (string, error) {
		raw, present := m[name]
		if !present {
			return "", errSubject
		}
		return memberString(raw)
	}
	switch format {
	case FormatIssSub: // RFC 9493 §3.2.3: both members REQUIRED
		iss, err := get("iss")
		if err != nil {
			return Subject{}, false, err
		}
		sub, err := get("sub")
		if err != nil {
			return Subject{}, false, err
		}
		return Subject{Format: FormatIssSub, Iss: iss, Sub: sub}, true, nil
	case FormatEmail: // RFC 9493 §3.2.2
		email, err := get("email")
		if err != nil {
			return Subject{}, false, err
		}
		return Subject{Format: FormatEmail, Email: email}, true, nil
	case FormatOpaque: // RFC 9493 §3.2.4
		id, err := get("id")
		if err != nil {
			return Subject{}, false, err
		}
		return Subject{Format: FormatOpaque, ID: id}, true, nil
	}
	return Subject{}, false, nil
}

// processedComplexMember is the one SSF 1.0 §3.3 complex-subject member
// this receiver processes. Only "user" names the principal whose tokens the
// gateway caches; the others narrow the event (one session, one device, one
// tenant), and revoking the whole user is a safe superset of that: a
// revocation only makes the gateway ask the authorization server again.
const processedComplexMember = "user"

func complexSubject(m map[string]json.RawMessage, critical []string) ([]Subject, string, error) {
	for _, name := range critical {
		if _, present := m[name]; present && name != processedComplexMember {
			// SSF 1.0 §3.6: "An SSF Receiver MUST discard any event that
			// contains a Subject with a Critical member that it is unable
			// to process."
			return nil, "critical complex-subject member " + name + " cannot be processed (SSF 1.0 §3.6)", nil
		}
	}
	// Only the member this receiver uses is checked: a malformed "device"
	// is no reason to refuse the revocation of its user.
	raw, ok := m[processedComplexMember]
	if !ok {
		return nil, "complex subject without a user member", nil
	}
	inner, err := subjectObject(raw)
	if err != nil {
		return nil, "", err
	}
	// SSF 1.0 §3.3: each member of a complex subject is a simple subject.
	f, _, err := subjectFormat(inner)
	if err != nil || f == "complex" || f == "aliases" {
		return nil, "", errSubject
	}
	s, ok, err := simpleSubject(f, inner)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "unsupported subject format", nil
	}
	return []Subject{s}, "", nil
}

// aliasesSubject reads RFC 9493 §3.2.8 "aliases": an array of identifiers
// of one principal, none of which may itself be "aliases".
func aliasesSubject(m map[string]json.RawMessage) ([]Subject, string, error) {
	raw, ok := m["identifiers"]
	if !ok {
		return nil, "", errSubject
	}
	var ids []json.RawMessage
	if err := json.Unmarshal(raw, &ids); err != nil || len(ids) == 0 || len(ids) > maxAliases {
		return nil, "", errSubject
	}
	var subs []Subject
	for _, r := range ids {
		inner, err := subjectObject(r)
		if err != nil {
			return nil, "", err
		}
		f, _, err := subjectFormat(inner)
		if err != nil || f == "aliases" || f == "complex" {
			return nil, "", errSubject
		}
		s, ok, err := simpleSubject(f, inner)
		if err != nil {
			return nil, "", err
		}
		if ok && !slices.Contains(subs, s) {
			subs = append(subs, s)
		}
	}
	if len(subs) == 0 {
		return nil, "unsupported subject format", nil
	}
	return subs, "", nil
}

// memberString reads a non-empty JSON string of bounded length.
func memberString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" || len(s) > maxSubjectValue {
		return "", errSubject
	}
	return s, nil
}

// numericDate reads a JWT NumericDate (RFC 7519 §2): a JSON number of
// seconds since the epoch, possibly fractional.
func numericDate(raw json.RawMessage) (time.Time, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, errors.New("NumericDate out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
