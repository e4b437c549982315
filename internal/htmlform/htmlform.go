// Package htmlform reads an HTML form as a browser sees it: its action
// (resolved against the page), its method, and its controls. Tests use it
// to drive login and consent pages over plain HTTP, the development
// server's and oidc-provider's alike, without a browser.
package htmlform

import (
	"bytes"
	"errors"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Input is one <input> control.
type Input struct {
	Name, Type, Value string
	Checked           bool
}

// Form is a form of a page.
type Form struct {
	Action *url.URL // resolved against the page's URL
	Method string   // upper case; GET when the form names none
	Inputs []Input
	// Buttons maps a submit button's name to its values, in page order.
	Buttons map[string][]string
}

// ErrNoForm is returned when the page has no form of the kind asked for.
var ErrNoForm = errors.New("htmlform: no form on the page")

// First returns the first form of page whose method is method (any method
// when method is ""), read with base as the page's URL.
func First(page []byte, base *url.URL, method string) (*Form, error) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return nil, err
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "form" {
			continue
		}
		m, _ := Attr(n, "method")
		m = strings.ToUpper(m)
		if m == "" {
			m = "GET"
		}
		if method != "" && !strings.EqualFold(m, method) {
			continue
		}
		action, _ := Attr(n, "action")
		au, err := base.Parse(action)
		if err != nil {
			return nil, err
		}
		f := &Form{Action: au, Method: m, Buttons: map[string][]string{}}
		for c := range n.Descendants() {
			if c.Type != html.ElementNode {
				continue
			}
			name, _ := Attr(c, "name")
			value, _ := Attr(c, "value")
			typ, _ := Attr(c, "type")
			typ = strings.ToLower(typ)
			switch {
			case c.Data == "input" && typ == "submit" && name != "":
				f.Buttons[name] = append(f.Buttons[name], value)
			case c.Data == "input" && typ != "submit" && typ != "button":
				_, checked := Attr(c, "checked")
				if typ == "" {
					typ = "text"
				}
				f.Inputs = append(f.Inputs, Input{Name: name, Type: typ, Value: value, Checked: checked})
			case c.Data == "button" && (typ == "submit" || typ == "") && name != "":
				f.Buttons[name] = append(f.Buttons[name], value)
			}
		}
		return f, nil
	}
	return nil, ErrNoForm
}

// Values is what the form submits as it stands: every named input but an
// unticked checkbox or radio button, with its value.
func (f *Form) Values() url.Values {
	v := url.Values{}
	for _, in := range f.Inputs {
		if in.Name == "" || ((in.Type == "checkbox" || in.Type == "radio") && !in.Checked) {
			continue
		}
		v.Add(in.Name, in.Value)
	}
	return v
}

// OfType returns the inputs of type typ ("hidden", "text", "checkbox" ...)
// named name ("" for any name).
func (f *Form) OfType(typ, name string) []Input {
	var out []Input
	for _, in := range f.Inputs {
		if in.Type == typ && (name == "" || in.Name == name) {
			out = append(out, in)
		}
	}
	return out
}

// Attr returns the value of an element's attribute (names compared
// case-insensitively, as HTML does).
func Attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val, true
		}
	}
	return "", false
}

// ElementText returns the text of the element with the given id.
func ElementText(page []byte, id string) (string, bool) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return "", false
	}
	for n := range doc.Descendants() {
		if v, _ := Attr(n, "id"); n.Type == html.ElementNode && v == id {
			var b strings.Builder
			for d := range n.Descendants() {
				if d.Type == html.TextNode {
					b.WriteString(d.Data)
				}
			}
			return b.String(), true
		}
	}
	return "", false
}

// Text is the visible text of a page, shortened to about 500 bytes, for
// error messages.
func Text(page []byte) string {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return string(page[:min(len(page), 300)])
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style" || n.Data == "head") {
			return
		}
		if n.Type == html.TextNode {
			if t := strings.TrimSpace(n.Data); t != "" {
				b.WriteString(t)
				b.WriteByte(' ')
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	s := b.String()
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
