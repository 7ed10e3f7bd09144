package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/linkbridge/linkbridge"
)

// OutboxCommand is "linkbridge outbox list|show|retry|discard": the
// operator's view of the write-back queue.
type OutboxCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
}

// bulkRetryLimit caps one bulk retry; a larger backlog takes another run.
const bulkRetryLimit = 100_000

// Run dispatches the outbox subcommands.
func (c *OutboxCommand) Run(ctx context.Context, args []string) (err error) {
	if len(args) == 0 {
		_, _ = fmt.Fprint(c.Stderr, outboxUsage) // the error says what is missing; a failed write to stderr has nowhere to go
		return errNoCommand
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "-help", "--help":
		_, err := fmt.Fprint(c.Stdout, outboxUsage)
		if err != nil {
			return err
		}
		return flag.ErrHelp
	case "list", "show", "retry", "discard":
	default:
		_, _ = fmt.Fprint(c.Stderr, outboxUsage) // the error is the unknown command; a failed write to stderr has nowhere to go
		return fmt.Errorf("unknown outbox command %q: use list, show, retry or discard (linkbridge outbox --help)", sub)
	}
	fs := newFlags("outbox "+sub, c.Getenv, c.Stderr)
	var dbPath string
	dbFlag(fs, &dbPath)
	var (
		state, person, referral, since string
		channel, subscription          string
		olderThan                      time.Duration
		limit                          int
		asJSON, all, yes               bool
	)
	switch sub {
	case "list":
		fs.synopsis = "outbox list [--state dead,pending] [--person ID] [--referral ID] [--channel write-back|rest-hook] [--subscription ID] [--older-than 1h] [--limit N] [--json]"
		fs.StringVar(&state, "state", "", "comma-separated states: pending, inflight, delivered, dead, discarded, superseded")
		fs.StringVar(&person, "person", "", "person id (the ordering key)")
		fs.StringVar(&referral, "referral", "", "referral id")
		fs.StringVar(&channel, "channel", "", "write-back or rest-hook (subscription notifications)")
		fs.StringVar(&subscription, "subscription", "", "a subscription's notifications (its ordering key)")
		fs.DurationVar(&olderThan, "older-than", 0, "only messages created longer ago than this (e.g. 1h)")
		fs.IntVar(&limit, "limit", 100, "at most this many, newest first")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "show":
		fs.synopsis = "outbox show ID"
	case "retry":
		fs.synopsis = "outbox retry ID | outbox retry --state dead (--since T | --person ID | --all) [--yes]"
		fs.StringVar(&state, "state", "", "bulk: retry every message in this state: dead or discarded")
		fs.StringVar(&since, "since", "", "bulk: only messages created since then: a duration back from now (2h, 30m) or a time (2026-01-02, 2026-01-02T15:04:05Z)")
		fs.StringVar(&person, "person", "", "bulk: only this person's messages (the ordering key)")
		fs.BoolVar(&all, "all", false, "bulk: every message in the state, with no other filter")
		fs.BoolVar(&yes, "yes", false, "bulk: do it; without --yes only count what would be retried")
	case "discard":
		fs.synopsis = "outbox discard ID"
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	bulk := sub == "retry" && state != ""
	var id int64
	if sub != "list" && !bulk {
		if fs.NArg() != 1 {
			return fmt.Errorf("outbox %s takes one message id (see linkbridge outbox list), got %d arguments", sub, fs.NArg())
		}
		if id, err = strconv.ParseInt(fs.Arg(0), 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("outbox %s: %q is not a message id: ids are the numbers in the ID column of linkbridge outbox list", sub, fs.Arg(0))
		}
	} else if fs.NArg() > 0 {
		return fmt.Errorf("outbox %s takes no message id here, got %q", sub, fs.Args())
	}
	var f linkbridge.OutboxFilter
	if bulk {
		if f, err = bulkRetryFilter(state, since, person, all, time.Now()); err != nil {
			return err
		}
	}
	db, err := openExistingStore(ctx, dbPath, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	store, ok := any(db).(linkbridge.OutboxStore)
	if !ok {
		return errors.New("this store has no outbox")
	}
	switch sub {
	case "list":
		f := linkbridge.OutboxFilter{OrderKey: person, ReferralID: referral, Limit: limit, Channel: linkbridge.OutboxChannel(channel)}
		if f.Channel != "" && !f.Channel.Valid() {
			return fmt.Errorf("--channel must be write-back or rest-hook, not %q", channel)
		}
		if subscription != "" {
			f.OrderKey = linkbridge.SubscriptionOrderKey(subscription)
		}
		for _, s := range strings.Split(state, ",") {
			if s = strings.TrimSpace(s); s != "" {
				f.States = append(f.States, linkbridge.OutboxState(s))
			}
		}
		if olderThan > 0 {
			f.OlderThan = time.Now().Add(-olderThan)
		}
		msgs, err := store.ListOutbox(ctx, f)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(c.Stdout).Encode(msgs)
		}
		var rows strings.Builder
		rows.WriteString("ID\tSTATE\tRESOURCE\tVERSION\tATTEMPTS\tLAST STATUS\tCREATED\tAVAILABLE\tCHANNEL\n")
		for _, m := range msgs {
			// A notification's version column is its event number
			// (0: handshake or heartbeat).
			version := int64(m.Version)
			ch := string(m.Channel)
			if m.Channel == linkbridge.ChannelRestHook {
				version = m.EventNumber
				ch += " " + m.Notification
			}
			fmt.Fprintf(&rows, "%d\t%s\t%s/%s\t%d\t%d\t%d\t%s\t%s\t%s\n", m.ID, m.State, m.ResourceType, m.ResourceID, version, m.Attempts, m.LastStatus,
				m.CreatedAt.UTC().Format(time.RFC3339), m.AvailableAt.UTC().Format(time.RFC3339), ch)
		}
		tw := tabwriter.NewWriter(c.Stdout, 0, 2, 2, ' ', 0)
		if _, err := io.WriteString(tw, rows.String()); err != nil {
			return err
		}
		return tw.Flush()
	case "show":
		m, err := store.GetOutbox(ctx, id)
		if err != nil {
			return err
		}
		out := struct {
			*linkbridge.OutboxMessage
			LastOutcome json.RawMessage `json:"lastOutcome,omitempty"`
		}{OutboxMessage: m}
		if json.Valid(m.LastOutcome) {
			out.LastOutcome = m.LastOutcome
		}
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "retry":
		if bulk {
			return c.bulkRetry(ctx, store, f, yes)
		}
		if err := store.RequeueOutbox(ctx, id, time.Now()); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.Stdout, "message %d queued for delivery\n", id)
		return err
	default: // discard
		if err := store.DiscardOutbox(ctx, id); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.Stdout, "message %d discarded\n", id)
		return err
	}
}

// bulkRetryFilter checks the bulk retry flags and returns the messages
// they select. A bulk retry needs a filter, or --all to say "every one".
func bulkRetryFilter(state, since, person string, all bool, now time.Time) (linkbridge.OutboxFilter, error) {
	f := linkbridge.OutboxFilter{OrderKey: person, Limit: bulkRetryLimit}
	switch linkbridge.OutboxState(state) {
	case linkbridge.OutboxDead, linkbridge.OutboxDiscarded:
		f.States = []linkbridge.OutboxState{linkbridge.OutboxState(state)}
	default:
		return f, fmt.Errorf("outbox retry --state must be dead or discarded, not %q", state)
	}
	if since != "" {
		t, err := parseSince(since, now)
		if err != nil {
			return f, err
		}
		f.CreatedSince = t
	}
	if !all && since == "" && person == "" {
		return f, errors.New("outbox retry --state needs --since, --person, or --all to retry every one; add --yes to do it rather than count")
	}
	if all && (since != "" || person != "") {
		return f, errors.New("outbox retry: --all means no other filter; leave out --since and --person, or --all")
	}
	return f, nil
}

// parseSince reads --since: a duration back from now, a date (UTC
// midnight) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration back from now (2h, 30m), a date (2026-01-02) or a time (2026-01-02T15:04:05Z)", s)
}

// bulkRetry counts the messages f selects and, with yes, queues each
// again, due now (oldest first; delivery stays in order per person either
// way: a person's later message waits while an earlier one is dead).
func (c *OutboxCommand) bulkRetry(ctx context.Context, store linkbridge.OutboxStore, f linkbridge.OutboxFilter, yes bool) error {
	msgs, err := store.ListOutbox(ctx, f)
	if err != nil {
		return err
	}
	more := ""
	if len(msgs) == f.Limit {
		more = fmt.Sprintf(" (the first %d: run again for the rest)", f.Limit)
	}
	if !yes {
		_, err := fmt.Fprintf(c.Stdout, "%d %s messages would be queued for delivery again%s; nothing changed: add --yes to do it\n", len(msgs), f.States[0], more)
		return err
	}
	queued, skipped := 0, 0
	now := time.Now()
	for i := len(msgs) - 1; i >= 0; i-- { // listed newest first
		if err := store.RequeueOutbox(ctx, msgs[i].ID, now); err != nil {
			if linkbridge.ErrorCode(err) == linkbridge.ECONFLICT || linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
				skipped++ // changed (or cleaned) since it was listed
				continue
			}
			return fmt.Errorf("after %d queued: message %d: %w", queued, msgs[i].ID, err)
		}
		queued++
	}
	_, err = fmt.Fprintf(c.Stdout, "%d %s messages queued for delivery again%s", queued, f.States[0], more)
	if err == nil && skipped > 0 {
		_, err = fmt.Fprintf(c.Stdout, "; %d skipped: their state changed meanwhile", skipped)
	}
	if err == nil {
		_, err = fmt.Fprintln(c.Stdout)
	}
	return err
}

const outboxUsage = `usage: linkbridge outbox <command> [flags]

  list [--state dead,pending] [--person ID] [--referral ID] [--channel write-back|rest-hook]
       [--subscription ID] [--older-than 1h] [--limit N] [--json]
  show ID        one message with the endpoint's last answer
  retry ID       queue a dead (or discarded) message again, due now
  retry --state dead (--since 2h | --person ID | --all) [--yes]
                 bulk: count the dead messages the filters select; with --yes queue them all again
  discard ID     drop a pending or dead message

All take --db (LINKBRIDGE_DB); flags may come before or after the id.
"linkbridge outbox <command> --help" shows a command's flags.
`
