package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// JUnit XML (the Ant/Jenkins schema most CI systems read).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes the report as JUnit XML: one testsuite for the role,
// one testcase per scenario; a failure carries the reason and the
// request/response that failed, and system-out lists the checks passed.
func (r *Report) WriteJUnit(w io.Writer) error {
	suite := junitSuite{
		Name: "linkbridge-conformance." + string(r.Role), Tests: len(r.Results), Failures: r.Failed, Skipped: r.Skipped,
		Time: secs(r.Secs), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{{"target", r.Target}, {"role", string(r.Role)}},
	}
	if r.LinkWork != "" {
		suite.Properties = append(suite.Properties, junitProperty{"linkWorkerSteps", r.LinkWork})
	}
	for _, res := range r.Results {
		c := junitCase{Name: res.ID + ": " + res.Name, Classname: "conformance." + string(r.Role), Time: secs(res.Secs)}
		if len(res.Steps) > 0 {
			c.SystemOut = "ok: " + strings.Join(res.Steps, "\nok: ")
		}
		switch res.Status {
		case Fail:
			text := res.Reason + "\n"
			if res.Ref != "" {
				text += "requirement: " + res.Ref + "\n"
			}
			if res.Failed != nil {
				text += "\n" + formatExchange(res.Failed)
			}
			c.Failure = &junitFailure{Message: res.Reason, Type: "conformance", Text: text}
		case Skip:
			c.Skipped = &junitSkipped{Message: res.Reason}
		}
		suite.Cases = append(suite.Cases, c)
	}
	doc := junitSuites{Name: "linkbridge conformance kit", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped, Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }
