package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/casework"
)

// ReportCommand is "linkbridge report": an organisation's period report
// or caseload (docs/reports.md), read from the store directly, as JSON or
// CSV.
type ReportCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Now is the time of a caseload; defaults to time.Now.
	Now func() time.Time
}

// Run parses the flags and prints the report.
func (c *ReportCommand) Run(ctx context.Context, args []string) (err error) {
	fs := newFlags("report", c.Getenv, c.Stderr)
	fs.synopsis = "report (--service ODS | --practice ODS,...) [--from P --to P | --caseload] [--format json|csv] [--db FILE|URL]"
	dbPath := new(string)
	dbFlag(fs, dbPath)
	from := fs.String("from", "", "first day of the period, inclusive: YYYY, YYYY-MM or YYYY-MM-DD (UTC)")
	to := fs.String("to", "", "last day of the period, inclusive: YYYY, YYYY-MM or YYYY-MM-DD (UTC)")
	format := fs.String("format", "json", "output format: json or csv")
	service := fs.String("service", "", "ODS code of the social prescribing service whose referrals are counted")
	practice := fs.String("practice", "", "comma-separated ODS codes of the referring practices whose referrals are counted")
	linkWorker := fs.String("link-worker", "", "only this link worker's referrals")
	caseload := fs.Bool("caseload", false, "print the caseload now (per link worker, against the norms) instead of a period report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("report takes no arguments, got %q", fs.Arg(0))
	}
	scope := linkbridge.ReportScope{ServiceODS: strings.ToUpper(*service), LinkWorkerID: *linkWorker}
	for _, ods := range strings.Split(*practice, ",") {
		if ods = strings.TrimSpace(ods); ods != "" {
			scope.ReferrerODS = append(scope.ReferrerODS, strings.ToUpper(ods))
		}
	}
	if scope.ServiceODS == "" && len(scope.ReferrerODS) == 0 {
		return errors.New("report needs the organisation: --service or --practice")
	}
	if *format != "json" && *format != "csv" {
		return fmt.Errorf("--format must be json or csv, not %q", *format)
	}
	var start, end time.Time
	if !*caseload {
		if start, end, err = linkbridge.ParseReportPeriod(*from, *to); err != nil {
			return fmt.Errorf("--%s: %s", strings.Join(linkbridge.ErrorExpression(err), ","), linkbridge.ErrorMessage(err))
		}
	}
	db, err := openExistingStore(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	work := &casework.Service{Store: db, Cases: db, Now: c.Now}
	var rep any
	var rows [][]string
	if *caseload {
		r, err := work.Caseload(ctx, scope)
		if err != nil {
			return err
		}
		rep, rows = r, caseloadRows(r)
	} else {
		r, err := work.PeriodReport(ctx, scope, start, end)
		if err != nil {
			return err
		}
		rep, rows = r, periodRows(r)
	}
	if *format == "json" {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := csv.NewWriter(c.Stdout)
	_ = w.Write([]string{"section", "key", "display", "metric", "value"}) // errors surface at Flush
	_ = w.WriteAll(rows)
	return w.Error()
}

// num renders a figure for CSV.
func num[T int | float64](v T) string {
	return strconv.FormatFloat(float64(v), 'f', -1, 64)
}

// periodRows flattens a period report to CSV rows: section, key (a
// breakdown's value), display, metric, value.
func periodRows(r *linkbridge.PeriodReport) [][]string {
	var rows [][]string
	add := func(section, key, display, metric, value string) {
		rows = append(rows, []string{section, key, display, metric, value})
	}
	add("period", "", "", "from", r.From.Format(time.RFC3339))
	add("period", "", "", "to", r.To.Format(time.RFC3339))
	f := r.Referrals
	for _, m := range []struct {
		name string
		v    int
	}{{"received", f.Received}, {"people", f.People}, {"accepted", f.Accepted}, {"declined", f.Declined}} {
		add("referrals", "", "", m.name, num(m.v))
	}
	counts := func(section string, cs []linkbridge.Count) {
		for _, c := range cs {
			add(section, c.Key, c.Display, "count", num(c.Count))
		}
	}
	counts("referrals.bySource", f.BySource)
	counts("referrals.byPractice", f.ByPractice)
	counts("referrals.byReason", f.ByReason)
	w := r.WaitingTime
	add("waitingTime", "", "", "firstContacts", num(w.FirstContacts))
	add("waitingTime", "", "", "medianDays", num(w.MedianDays))
	add("waitingTime", "", "", "p90Days", num(w.P90Days))
	add("waitingTime", "", "", "stillWaiting", num(w.StillWaiting))
	ct := r.Contacts
	add("contacts", "", "", "attended", num(ct.Attended))
	add("contacts", "", "", "dna", num(ct.DNA))
	add("contacts", "", "", "peopleSeen", num(ct.PeopleSeen))
	add("contacts", "", "", "perPerson", num(ct.PerPerson))
	add("contacts", "", "", "dnaRate", num(ct.DNARate))
	d := r.Discharges
	add("discharges", "", "", "total", num(d.Total))
	add("discharges", "", "", "meanContacts", num(d.MeanContacts))
	add("discharges", "", "", "underSixContacts", num(d.UnderSixContacts))
	add("discharges", "", "", "overTwelveContacts", num(d.OverTwelveContacts))
	counts("discharges.byReason", d.ByReason)
	for _, o := range r.Outcomes {
		key := string(o.Instrument)
		if o.Item != "" {
			key += ":" + o.Item
		}
		add("outcomes", key, o.Score, "pairs", num(o.Pairs))
		add("outcomes", key, o.Score, "meanBaseline", num(o.MeanBaseline))
		add("outcomes", key, o.Score, "meanFollowUp", num(o.MeanFollowUp))
		add("outcomes", key, o.Score, "meanChange", num(o.MeanChange))
		add("outcomes", key, o.Score, "improved", num(o.Improved))
		add("outcomes", key, o.Score, "shareImproved", num(o.ShareImproved))
	}
	return rows
}

// caseloadRows flattens a caseload to CSV rows: one block per link worker
// (key its id, display its name), then the total (key "(total)").
func caseloadRows(r *linkbridge.CaseloadReport) [][]string {
	var rows [][]string
	for _, row := range append(append([]*linkbridge.CaseloadRow(nil), r.Rows...), r.Total) {
		key, display := row.LinkWorker.ID, row.LinkWorker.Name
		if row == r.Total {
			key = "(total)"
		}
		add := func(metric, value string) { rows = append(rows, []string{"caseload", key, display, metric, value}) }
		add("open", num(row.Open))
		add("active", num(row.Active))
		add("onHold", num(row.OnHold))
		add("waitingFirstContact", num(row.WaitingFirstContact))
		add("takenOnLast12Months", num(row.TakenOnLast12Months))
		add("underYearNorm", strconv.FormatBool(row.UnderYearNorm))
		add("overYearNorm", strconv.FormatBool(row.OverYearNorm))
		add("averageContacts", num(row.AverageContacts))
		for _, ch := range []struct {
			name string
			c    linkbridge.CaseloadCheck
		}{{"fewContactsAtDischarge", row.FewContactsAtDischarge}, {"overContactNorm", row.OverContactNorm},
			{"openOverThreeMonths", row.OpenOverThreeMonths}, {"reviewOverdue", row.ReviewOverdue}} {
			add(ch.name, num(ch.c.Count))
			add(ch.name+".referrals", strings.Join(ch.c.Referrals, " "))
		}
	}
	return rows
}
