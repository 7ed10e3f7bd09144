package refgp

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"
)

// PatientPage is what the HTML page of one patient shows: the record as the
// MDT reads it. Every string is escaped by html/template.
type PatientPage struct {
	ID, Name, NHSNumber, BirthDate string
	Referrals                      []PageReferral
	Entries                        []PageRow // coded entries (Procedure, declined Observation)
	Contacts                       []PageRow
	Plans                          []PageRow
	Goals                          []PageRow
	Outcomes                       []PageRow
	Other                          []PageRow
}

// PageReferral is one referral Task and how its status moved.
type PageReferral struct {
	ID, Status, BusinessStatus, Owner, Reason, Updated string
	History                                            []string
}

// PageRow is one line of a section: when, what, and details.
type PageRow struct {
	When, What, Status, Detail string
}

var pageTemplate = template.Must(template.New("patient").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GP record – {{.NHSNumber}}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#212b32}table{border-collapse:collapse;width:100%;margin-bottom:1.5em}
td,th{border-bottom:1px solid #d8dde0;padding:.3em .5em;text-align:left;vertical-align:top}h2{border-bottom:3px solid #005eb8}</style></head>
<body><h1>{{.Name}}</h1><p>NHS number <strong>{{.NHSNumber}}</strong>{{if .BirthDate}} · born {{.BirthDate}}{{end}} · GP record id {{.ID}}</p>
<h2>Social prescribing referral</h2>
{{range .Referrals}}<table><tr><th>Status</th><td id="referral-status">{{.Status}}</td></tr>
{{if .BusinessStatus}}<tr><th>Step</th><td>{{.BusinessStatus}}</td></tr>{{end}}
{{if .Owner}}<tr><th>Link worker</th><td>{{.Owner}}</td></tr>{{end}}
{{if .Reason}}<tr><th>Reason</th><td>{{.Reason}}</td></tr>{{end}}
<tr><th>Last updated</th><td>{{.Updated}}</td></tr>
<tr><th>Status history</th><td>{{range .History}}{{.}}<br>{{end}}</td></tr></table>
{{else}}<p>No referral Task received.</p>{{end}}
{{define "rows"}}{{if .}}<table><tr><th>When</th><th>What</th><th>Status</th><th>Details</th></tr>
{{range .}}<tr><td>{{.When}}</td><td>{{.What}}</td><td>{{.Status}}</td><td>{{.Detail}}</td></tr>{{end}}</table>{{else}}<p>None.</p>{{end}}{{end}}
<h2>Coded entries</h2>{{template "rows" .Entries}}
<h2>Contacts</h2>{{template "rows" .Contacts}}
<h2>Personalised care and support plan</h2>{{template "rows" .Plans}}
<h2>Goals</h2>{{template "rows" .Goals}}
<h2>Outcome scores over time</h2>{{template "rows" .Outcomes}}
{{if .Other}}<h2>Onward referrals and other entries</h2>{{template "rows" .Other}}{{end}}
</body></html>
`))

var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reference GP record</title></head><body>
<h1>Reference GP record endpoint</h1><p>FHIR R4 base: <code>/fhir</code> (<a href="/fhir/metadata">CapabilityStatement</a>)</p>
<ul>{{range .}}<li><a href="/patients/{{.ID}}">{{.Name}}</a> – NHS number {{.NHSNumber}}</li>{{else}}<li>No patients yet.</li>{{end}}</ul>
</body></html>
`))

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	ps, err := s.patients(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var list []PatientPage
	for _, p := range ps {
		list = append(list, patientHeader(p))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTemplate.Execute(w, list)
}

func (s *Server) handlePatientPage(w http.ResponseWriter, r *http.Request) {
	page, err := s.Page(r, mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = pageTemplate.Execute(w, page)
}

// Page builds the page of one patient from the stored record.
func (s *Server) Page(r *http.Request, id string) (*PatientPage, error) {
	p, all, err := s.patientRecord(r.Context(), id)
	if err != nil {
		return nil, err
	}
	page := patientHeader(p)
	for _, st := range all {
		var d doc
		_ = json.Unmarshal(st.Body, &d)
		switch st.Type {
		case "Task":
			ref := PageReferral{ID: st.ID, Status: d.str("status"), BusinessStatus: d.concept("businessStatus"),
				Owner: d.obj("owner").str("display"), Reason: d.concept("statusReason"), Updated: st.LastUpdated.Format("2006-01-02 15:04:05")}
			if ref.Owner == "" {
				ref.Owner = d.obj("owner").obj("identifier").str("value")
			}
			if hist, err := s.history(r.Context(), "Task", st.ID); err == nil {
				last := ""
				for i := len(hist) - 1; i >= 0; i-- {
					var hd doc
					_ = json.Unmarshal(hist[i].Body, &hd)
					line := hd.str("status")
					if bs := hd.concept("businessStatus"); bs != "" {
						line += " (" + bs + ")"
					}
					if line != last {
						ref.History = append(ref.History, hist[i].LastUpdated.Format("2006-01-02 15:04:05")+"  "+line)
						last = line
					}
				}
			}
			page.Referrals = append(page.Referrals, ref)
		case "Procedure":
			when := d.str("performedDateTime")
			if pp := d.obj("performedPeriod"); pp != nil {
				when = pp.str("start")
				if e := pp.str("end"); e != "" {
					when += " – " + e
				}
			}
			page.Entries = append(page.Entries, PageRow{When: when, What: d.concept("code"), Status: d.str("status"), Detail: noteText(d)})
		case "Observation":
			row := PageRow{When: d.str("effectiveDateTime"), What: d.concept("code"), Status: d.str("status"), Detail: observationValue(d)}
			if strings.Contains(string(st.Body), `"871711000000103"`) {
				page.Entries = append(page.Entries, row)
			} else {
				page.Outcomes = append(page.Outcomes, row)
			}
		case "Encounter":
			detail := d.obj("class").str("display")
			if l := d.obj("length"); l != nil {
				detail += fmt.Sprintf(", %v min", l["value"])
			}
			page.Contacts = append(page.Contacts, PageRow{When: d.obj("period").str("start"), What: firstConcept(d, "type"), Status: d.str("status"), Detail: detail})
		case "CarePlan":
			var acts []string
			for _, a := range d.list("activity") {
				det := a.obj("detail")
				if t := det.str("description"); t != "" {
					acts = append(acts, t)
				} else if ref := a.obj("reference").str("reference"); ref != "" {
					acts = append(acts, "onward referral "+ref)
				} else if det != nil {
					acts = append(acts, "activity ("+det.str("status")+")")
				}
			}
			detail := d.str("description")
			if len(acts) > 0 {
				detail = strings.TrimSpace(detail + " Activities: " + strings.Join(acts, "; "))
			}
			page.Plans = append(page.Plans, PageRow{When: d.obj("period").str("start"), What: d.str("title"), Status: d.str("status"), Detail: detail})
		case "Goal":
			status := d.str("lifecycleStatus")
			if a := d.concept("achievementStatus"); a != "" {
				status += " (" + a + ")"
			}
			page.Goals = append(page.Goals, PageRow{What: d.obj("description").str("text"), Status: status})
		default:
			page.Other = append(page.Other, PageRow{What: st.Type + " " + d.concept("code"), Status: d.str("status")})
		}
	}
	sort.SliceStable(page.Outcomes, func(i, j int) bool { return page.Outcomes[i].When < page.Outcomes[j].When })
	sort.SliceStable(page.Contacts, func(i, j int) bool { return page.Contacts[i].When < page.Contacts[j].When })
	return &page, nil
}

func patientHeader(p *Stored) PatientPage {
	var d doc
	_ = json.Unmarshal(p.Body, &d)
	page := PatientPage{ID: p.ID, BirthDate: d.str("birthDate")}
	if names := d.list("name"); len(names) > 0 {
		n := names[0]
		var given []string
		for _, g := range asSlice(n["given"]) {
			if s, ok := g.(string); ok {
				given = append(given, s)
			}
		}
		page.Name = strings.TrimSpace(strings.Join(given, " ") + " " + n.str("family"))
	}
	for _, id := range d.list("identifier") {
		if id.str("system") == "https://fhir.nhs.uk/Id/nhs-number" {
			page.NHSNumber = id.str("value")
		}
	}
	if page.Name == "" {
		page.Name = "Patient " + p.ID
	}
	return page
}

// doc is a resource as generic JSON with small typed accessors.
type doc map[string]any

func (d doc) str(k string) string {
	s, _ := d[k].(string)
	return s
}

func (d doc) obj(k string) doc {
	m, _ := d[k].(map[string]any)
	return m
}

func (d doc) list(k string) []doc {
	var out []doc
	for _, v := range asSlice(d[k]) {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// concept renders a CodeableConcept: text, else the first coding's display
// or code.
func (d doc) concept(k string) string {
	c := d.obj(k)
	if c == nil {
		return ""
	}
	if t := c.str("text"); t != "" {
		return t
	}
	if codings := c.list("coding"); len(codings) > 0 {
		if v := codings[0].str("display"); v != "" {
			return v
		}
		return codings[0].str("code")
	}
	return ""
}

func firstConcept(d doc, k string) string {
	for _, c := range d.list(k) {
		return doc{"c": map[string]any(c)}.concept("c")
	}
	return ""
}

func noteText(d doc) string {
	var out []string
	for _, n := range d.list("note") {
		out = append(out, n.str("text"))
	}
	return strings.Join(out, " ")
}

// observationValue renders an Observation's value or components.
func observationValue(d doc) string {
	if v, ok := d["valueInteger"]; ok {
		return fmt.Sprint(v)
	}
	if q := d.obj("valueQuantity"); q != nil {
		return fmt.Sprint(q["value"])
	}
	var parts []string
	for _, c := range d.list("component") {
		label := c.concept("code")
		v := c["valueInteger"]
		if q := c.obj("valueQuantity"); q != nil {
			v = q["value"]
		}
		parts = append(parts, fmt.Sprintf("%s: %v", label, v))
	}
	return strings.Join(parts, ", ")
}
