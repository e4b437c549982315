package ssf

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSubject(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		critical []string
		want     []Subject
		wantWhy  bool // not actionable, no error
		wantErr  bool
	}{
		{name: "iss_sub", raw: `{"format":"iss_sub","iss":"https://idp.example/","sub":"u1"}`,
			want: []Subject{{Format: FormatIssSub, Iss: "https://idp.example/", Sub: "u1"}}},
		{name: "email", raw: `{"format":"email","email":"a@example.com"}`,
			want: []Subject{{Format: FormatEmail, Email: "a@example.com"}}},
		{name: "opaque", raw: `{"format":"opaque","id":"xyz"}`,
			want: []Subject{{Format: FormatOpaque, ID: "xyz"}}},
		{name: "unknown members ignored", raw: `{"format":"opaque","id":"xyz","extra":[1,2]}`,
			want: []Subject{{Format: FormatOpaque, ID: "xyz"}}},
		{name: "legacy subject_type iss-sub (RISC 1.0 §3.1)", raw: `{"subject_type":"iss-sub","iss":"https://accounts.example/","sub":"7"}`,
			want: []Subject{{Format: FormatIssSub, Iss: "https://accounts.example/", Sub: "7"}}},
		{name: "legacy subject_type email", raw: `{"subject_type":"email","email":"b@example.com"}`,
			want: []Subject{{Format: FormatEmail, Email: "b@example.com"}}},
		{name: "format wins over subject_type", raw: `{"format":"opaque","id":"x","subject_type":"email"}`,
			want: []Subject{{Format: FormatOpaque, ID: "x"}}},
		{name: "complex: the user member", raw: `{"format":"complex","user":{"format":"iss_sub","iss":"https://i/","sub":"u"},"device":{"format":"opaque","id":"d"}}`,
			want: []Subject{{Format: FormatIssSub, Iss: "https://i/", Sub: "u"}}},
		{name: "complex: malformed non-user member is ignored", raw: `{"format":"complex","user":{"format":"email","email":"c@example.com"},"tenant":7}`,
			want: []Subject{{Format: FormatEmail, Email: "c@example.com"}}},
		{name: "complex: critical member we cannot process discards (SSF §3.6)", raw: `{"format":"complex","user":{"format":"email","email":"c@example.com"},"tenant":{"format":"opaque","id":"t"}}`,
			critical: []string{"tenant"}, wantWhy: true},
		{name: "complex: critical user is processed", raw: `{"format":"complex","user":{"format":"email","email":"c@example.com"}}`,
			critical: []string{"user", "tenant"}, want: []Subject{{Format: FormatEmail, Email: "c@example.com"}}},
		{name: "complex without user", raw: `{"format":"complex","session":{"format":"opaque","id":"s"}}`, wantWhy: true},
		{name: "complex user not an object", raw: `{"format":"complex","user":"u"}`, wantErr: true},
		{name: "complex user nested complex", raw: `{"format":"complex","user":{"format":"complex","user":{"format":"opaque","id":"x"}}}`, wantErr: true},
		{name: "aliases", raw: `{"format":"aliases","identifiers":[{"format":"email","email":"d@example.com"},{"format":"phone_number","phone_number":"+1"},{"format":"opaque","id":"o"}]}`,
			want: []Subject{{Format: FormatEmail, Email: "d@example.com"}, {Format: FormatOpaque, ID: "o"}}},
		{name: "aliases of unsupported only", raw: `{"format":"aliases","identifiers":[{"format":"phone_number","phone_number":"+1"}]}`, wantWhy: true},
		{name: "aliases nested", raw: `{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[]}]}`, wantErr: true},
		{name: "aliases empty", raw: `{"format":"aliases","identifiers":[]}`, wantErr: true},
		{name: "aliases too many", raw: `{"format":"aliases","identifiers":[` + strings.Repeat(`{"format":"opaque","id":"x"},`, maxAliases) + `{"format":"opaque","id":"y"}]}`, wantErr: true},
		{name: "phone_number is not actionable", raw: `{"format":"phone_number","phone_number":"+1 206 555 0123"}`, wantWhy: true},
		{name: "unknown format is not actionable", raw: `{"format":"catalog_item","catalog_id":"c"}`, wantWhy: true},
		{name: "no format", raw: `{"iss":"https://i/","sub":"u"}`, wantErr: true},
		{name: "format not a string", raw: `{"format":1,"id":"x"}`, wantErr: true},
		{name: "iss_sub without sub", raw: `{"format":"iss_sub","iss":"https://i/"}`, wantErr: true},
		{name: "iss_sub with numeric sub", raw: `{"format":"iss_sub","iss":"https://i/","sub":42}`, wantErr: true},
		{name: "email empty", raw: `{"format":"email","email":""}`, wantErr: true},
		{name: "opaque too long", raw: `{"format":"opaque","id":"` + strings.Repeat("a", maxSubjectValue+1) + `"}`, wantErr: true},
		{name: "not an object", raw: `["format","opaque"]`, wantErr: true},
		{name: "not JSON", raw: `{"format":`, wantErr: true},
		{name: "legacy complex is refused", raw: `{"subject_type":"complex","user":{"format":"opaque","id":"x"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := parseSubject([]byte(tt.raw), tt.critical)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if (why != "") != tt.wantWhy {
				t.Fatalf("not actionable = %q, want %v", why, tt.wantWhy)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("subjects = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseEvents(t *testing.T) {
	subID := `{"format":"opaque","id":"top"}`
	tests := []struct {
		name       string
		events     string
		subID      string
		wantReason Reason // "" = accepted
		check      func(t *testing.T, evs []event)
	}{
		{name: "sub_id subject", events: `{"` + EventSessionRevoked + `":{}}`, subID: subID,
			check: func(t *testing.T, evs []event) {
				wantSubjects(t, evs[0], Subject{Format: FormatOpaque, ID: "top"})
			}},
		{name: "event subject member (CAEP/RISC legacy) plus sub_id: both", events: `{"` + EventAccountDisabled + `":{"subject":{"format":"email","email":"e@example.com"},"reason":"hijacking"}}`, subID: subID,
			check: func(t *testing.T, evs []event) {
				wantSubjects(t, evs[0], Subject{Format: FormatEmail, Email: "e@example.com"}, Subject{Format: FormatOpaque, ID: "top"})
			}},
		{name: "same subject twice is one", events: `{"` + EventAccountPurged + `":{"subject":` + subID + `}}`, subID: subID,
			check: func(t *testing.T, evs []event) {
				wantSubjects(t, evs[0], Subject{Format: FormatOpaque, ID: "top"})
			}},
		{name: "event subject only", events: `{"` + EventSessionsRevoked + `":{"subject":{"format":"iss_sub","iss":"https://i/","sub":"s"}}}`,
			check: func(t *testing.T, evs []event) {
				wantSubjects(t, evs[0], Subject{Format: FormatIssSub, Iss: "https://i/", Sub: "s"})
			}},
		{name: "event_timestamp read", events: `{"` + EventCredentialChange + `":{"credential_type":"password","change_type":"update","event_timestamp":1615304991}}`, subID: subID,
			check: func(t *testing.T, evs []event) {
				if want := time.Unix(1615304991, 0).UTC(); !evs[0].Time.Equal(want) {
					t.Errorf("Time = %v, want %v", evs[0].Time, want)
				}
			}},
		{name: "unknown event type: no subject needed", events: `{"https://example.com/event/other":{}}`,
			check: func(t *testing.T, evs []event) {
				if evs[0].Revokes || len(evs[0].Subjects) != 0 {
					t.Errorf("event = %+v, want non-revoking", evs[0])
				}
			}},
		{name: "unknown event with a malformed sub_id is still fine", events: `{"https://schemas.openid.net/secevent/ssf/event-type/verification":{"state":"x"}}`, subID: `"nonsense"`,
			check: func(t *testing.T, evs []event) {
				if evs[0].Revokes {
					t.Error("verification event revokes")
				}
			}},
		{name: "revoking event with unsupported format: acknowledged, not actionable", events: `{"` + EventAccountDisabled + `":{}}`, subID: `{"format":"phone_number","phone_number":"+1"}`,
			check: func(t *testing.T, evs []event) {
				if len(evs[0].Subjects) != 0 || evs[0].NotActionable == "" {
					t.Errorf("event = %+v, want not actionable", evs[0])
				}
			}},
		{name: "one usable identifier is enough", events: `{"` + EventAccountDisabled + `":{"subject":{"format":"phone_number","phone_number":"+1"}}}`, subID: subID,
			check: func(t *testing.T, evs []event) {
				wantSubjects(t, evs[0], Subject{Format: FormatOpaque, ID: "top"})
				if evs[0].NotActionable != "" {
					t.Errorf("NotActionable = %q", evs[0].NotActionable)
				}
			}},
		{name: "two events sorted by type", events: `{"` + EventSessionRevoked + `":{},"` + EventAccountDisabled + `":{}}`, subID: subID,
			check: func(t *testing.T, evs []event) {
				if len(evs) != 2 || evs[0].Type != EventSessionRevoked || evs[1].Type != EventAccountDisabled { // "caep" < "risc"
					t.Errorf("events = %+v", evs)
				}
			}},
		{name: "missing", events: ``, wantReason: ReasonEvents},
		{name: "null", events: `null`, wantReason: ReasonEvents},
		{name: "empty object", events: `{}`, wantReason: ReasonEvents},
		{name: "array", events: `["` + EventSessionRevoked + `"]`, wantReason: ReasonEvents},
		{name: "payload not an object", events: `{"` + EventSessionRevoked + `":true}`, subID: subID, wantReason: ReasonEvents},
		{name: "payload null", events: `{"` + EventSessionRevoked + `":null}`, subID: subID, wantReason: ReasonEvents},
		{name: "empty event type", events: `{"":{}}`, wantReason: ReasonEvents},
		{name: "too many events", events: manyEvents(DefaultMaxEvents + 1), wantReason: ReasonEvents},
		{name: "revoking event without subject", events: `{"` + EventSessionRevoked + `":{}}`, wantReason: ReasonSubject},
		{name: "revoking event with null subject and no sub_id", events: `{"` + EventSessionRevoked + `":{"subject":null}}`, subID: `null`, wantReason: ReasonSubject},
		{name: "revoking event with malformed sub_id", events: `{"` + EventSessionRevoked + `":{}}`, subID: `{"format":"iss_sub","iss":"https://i/"}`, wantReason: ReasonSubject},
		{name: "revoking event with malformed event subject", events: `{"` + EventSessionRevoked + `":{"subject":"u1"}}`, subID: subID, wantReason: ReasonSubject},
		{name: "event_timestamp not a number", events: `{"` + EventSessionRevoked + `":{"event_timestamp":"yesterday"}}`, subID: subID, wantReason: ReasonEvents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, rerr := parseEvents(json.RawMessage(tt.events), json.RawMessage(tt.subID), DefaultMaxEvents, nil)
			if tt.wantReason != "" {
				if rerr == nil {
					t.Fatalf("accepted %+v, want refusal %s", evs, tt.wantReason)
				}
				if rerr.Reason != tt.wantReason || rerr.Code != CodeInvalidRequest {
					t.Fatalf("refused %s/%s, want invalid_request/%s", rerr.Code, rerr.Reason, tt.wantReason)
				}
				return
			}
			if rerr != nil {
				t.Fatalf("refused: %v", rerr)
			}
			tt.check(t, evs)
		})
	}
}

func wantSubjects(t *testing.T, ev event, want ...Subject) {
	t.Helper()
	if !ev.Revokes {
		t.Fatalf("event %s does not revoke", ev.Type)
	}
	if !slices.Equal(ev.Subjects, want) {
		t.Fatalf("subjects = %+v, want %+v", ev.Subjects, want)
	}
}

func manyEvents(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"https://example.com/e/` + string(rune('a'+i)) + `":{}`)
	}
	b.WriteString("}")
	return b.String()
}

func TestRevokes(t *testing.T) {
	for _, ev := range []string{EventSessionRevoked, EventCredentialChange, EventAccountDisabled, EventAccountPurged, EventSessionsRevoked} {
		if !Revokes(ev) {
			t.Errorf("Revokes(%s) = false", ev)
		}
	}
	for _, ev := range []string{
		"https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
		"https://schemas.openid.net/secevent/risc/event-type/account-enabled",
		"https://schemas.openid.net/secevent/ssf/event-type/verification",
		"https://schemas.openid.net/secevent/caep/event-type/session-revoked/", "",
	} {
		if Revokes(ev) {
			t.Errorf("Revokes(%q) = true", ev)
		}
	}
}

func TestNumericDate(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: `1615304991`, want: time.Unix(1615304991, 0)},
		{in: `1615304991.5`, want: time.Unix(1615304991, 5e8)},
		{in: `0`, want: time.Unix(0, 0)},
		{in: `-1`, wantErr: true},
		{in: `1e300`, wantErr: true},
		{in: `"1615304991"`, wantErr: true},
		{in: `true`, wantErr: true},
	} {
		got, err := numericDate(json.RawMessage(tt.in))
		if (err != nil) != tt.wantErr || (err == nil && !got.Equal(tt.want)) {
			t.Errorf("numericDate(%s) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseEvents feeds arbitrary "events" and "sub_id" claims to the
// parser: it must not panic, must refuse with invalid_request or accept,
// and whatever it accepts must be a well-formed revocation list.
func FuzzParseEvents(f *testing.F) {
	seeds := [][2]string{
		{`{"` + EventSessionRevoked + `":{}}`, `{"format":"opaque","id":"x"}`},
		{`{"` + EventAccountDisabled + `":{"subject":{"subject_type":"iss-sub","iss":"https://i/","sub":"s"},"reason":"hijacking"}}`, ``},
		{`{"` + EventCredentialChange + `":{"credential_type":"password","change_type":"update","event_timestamp":1615304991}}`, `{"format":"complex","user":{"format":"email","email":"a@b"},"tenant":{"format":"opaque","id":"t"}}`},
		{`{"` + EventAccountPurged + `":{}}`, `{"format":"aliases","identifiers":[{"format":"email","email":"a@b"},{"format":"opaque","id":"o"}]}`},
		{`{"https://example.com/x":{"a":[1,{"b":null}]}}`, `null`},
		{`{}`, `{}`},
		{`[]`, `[]`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, events, subID []byte) {
		evs, rerr := parseEvents(events, subID, DefaultMaxEvents, []string{"tenant"})
		if rerr != nil {
			if rerr.Code != CodeInvalidRequest || rerr.Description == "" {
				t.Fatalf("refusal %+v", rerr)
			}
			return
		}
		if len(evs) == 0 || len(evs) > DefaultMaxEvents {
			t.Fatalf("accepted %d events", len(evs))
		}
		for _, ev := range evs {
			if ev.Type == "" || ev.Revokes != Revokes(ev.Type) {
				t.Fatalf("event %+v", ev)
			}
			if !ev.Revokes && len(ev.Subjects) > 0 {
				t.Fatalf("non-revoking event with subjects %+v", ev)
			}
			if ev.Revokes && (len(ev.Subjects) == 0) == (ev.NotActionable == "") {
				t.Fatalf("revoking event: subjects %v, not actionable %q", ev.Subjects, ev.NotActionable)
			}
			for _, s := range ev.Subjects {
				checkSubject(t, s)
			}
		}
	})
}

// FuzzParseSubject: any subject identifier parses to supported, complete
// identifiers, or to "not actionable", or to errSubject; nothing else.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		`{"format":"iss_sub","iss":"https://i/","sub":"u"}`,
		`{"format":"email","email":"a@example.com"}`,
		`{"format":"opaque","id":"x"}`,
		`{"subject_type":"iss-sub","iss":"https://i/","sub":"u"}`,
		`{"format":"complex","user":{"format":"opaque","id":"x"},"tenant":{"format":"opaque","id":"t"}}`,
		`{"format":"aliases","identifiers":[{"format":"email","email":"a@b"}]}`,
		`{"format":"phone_number","phone_number":"+1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		subs, why, err := parseSubject(raw, []string{"tenant"})
		if err != nil {
			if !errors.Is(err, errSubject) {
				t.Fatalf("error %v is not errSubject", err)
			}
			if subs != nil || why != "" {
				t.Fatalf("error with results %v %q", subs, why)
			}
			return
		}
		if (len(subs) == 0) == (why == "") {
			t.Fatalf("subjects %v, not actionable %q", subs, why)
		}
		for _, s := range subs {
			checkSubject(t, s)
		}
	})
}

func checkSubject(t *testing.T, s Subject) {
	t.Helper()
	ok := false
	switch s.Format {
	case FormatIssSub:
		ok = s.Iss != "" && s.Sub != "" && s.Email == "" && s.ID == ""
	case FormatEmail:
		ok = s.Email != "" && s.Iss == "" && s.Sub == "" && s.ID == ""
	case FormatOpaque:
		ok = s.ID != "" && s.Iss == "" && s.Sub == "" && s.Email == ""
	}
	if !ok {
		t.Fatalf("malformed subject %+v", s)
	}
	for _, v := range []string{s.Iss, s.Sub, s.Email, s.ID} {
		if len(v) > maxSubjectValue {
			t.Fatalf("subject value of %d bytes", len(v))
		}
	}
}
