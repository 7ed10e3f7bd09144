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

// Run dispatches the outbox subcommands.
func (c *OutboxCommand) Run(ctx context.Context, args []string) (err error) {
	if len(args) == 0 {
		_, _ = fmt.Fprint(c.Stderr, outboxUsage) // the error is ErrHelp; a failed write to stderr has nowhere to go
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("outbox "+sub, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	dbPath := fs.String("db", envOr(c.Getenv, "DB", "linkbridge.db"), dbFlagHelp)
	state := fs.String("state", "", "list: comma-separated states (pending, inflight, delivered, dead, discarded, superseded)")
	person := fs.String("person", "", "list: person id (the ordering key)")
	referral := fs.String("referral", "", "list: referral id")
	channel := fs.String("channel", "", "list: write-back or rest-hook (subscription notifications)")
	subscription := fs.String("subscription", "", "list: a subscription's notifications (its ordering key)")
	olderThan := fs.Duration("older-than", 0, "list: only messages older than this (e.g. 1h)")
	limit := fs.Int("limit", 100, "list: at most this many")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openStore(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	store, ok := any(db).(linkbridge.OutboxStore)
	if !ok {
		return errors.New("this store has no outbox")
	}
	id := func() (int64, error) {
		if fs.NArg() != 1 {
			return 0, fmt.Errorf("outbox %s takes one message id", sub)
		}
		return strconv.ParseInt(fs.Arg(0), 10, 64)
	}
	switch sub {
	case "list":
		f := linkbridge.OutboxFilter{OrderKey: *person, ReferralID: *referral, Limit: *limit, Channel: linkbridge.OutboxChannel(*channel)}
		if f.Channel != "" && !f.Channel.Valid() {
			return fmt.Errorf("--channel must be write-back or rest-hook, not %q", *channel)
		}
		if *subscription != "" {
			f.OrderKey = linkbridge.SubscriptionOrderKey(*subscription)
		}
		for _, s := range strings.Split(*state, ",") {
			if s = strings.TrimSpace(s); s != "" {
				f.States = append(f.States, linkbridge.OutboxState(s))
			}
		}
		if *olderThan > 0 {
			f.OlderThan = time.Now().Add(-*olderThan)
		}
		msgs, err := store.ListOutbox(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
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
		n, err := id()
		if err != nil {
			return err
		}
		m, err := store.GetOutbox(ctx, n)
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
		n, err := id()
		if err != nil {
			return err
		}
		if err := store.RequeueOutbox(ctx, n, time.Now()); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.Stdout, "message %d queued for delivery\n", n)
		return err
	case "discard":
		n, err := id()
		if err != nil {
			return err
		}
		if err := store.DiscardOutbox(ctx, n); err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.Stdout, "message %d discarded\n", n)
		return err
	}
	_, _ = fmt.Fprint(c.Stderr, outboxUsage) // the error is the unknown command; a failed write to stderr has nowhere to go
	return fmt.Errorf("unknown outbox command %q", sub)
}

const outboxUsage = `usage: linkbridge outbox <command> [flags]

  list [--state dead,pending] [--person ID] [--referral ID] [--channel write-back|rest-hook]
       [--subscription ID] [--older-than 1h] [--limit N] [--json]
  show ID        one message with the endpoint's last answer
  retry ID       queue a dead (or discarded) message again, due now
  discard ID     drop a pending or dead message

All take --db (LINKBRIDGE_DB).
`

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv("LINKBRIDGE_" + name); v != "" {
		return v
	}
	return def
}
