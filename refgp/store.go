package refgp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// timeLayout is fixed width so stored instants sort as strings.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Stored is one stored resource version.
type Stored struct {
	Type, ID    string
	Version     int
	LastUpdated time.Time
	// Body is the FHIR JSON as served (with meta).
	Body []byte
}

// ETag is the weak ETag of the version.
func (st *Stored) ETag() string { return fmt.Sprintf(`W/"%d"`, st.Version) }

// write is one create or update.
type write struct {
	typ string
	// id is the target id; "" lets the server assign one (create, or a
	// conditional update that matched nothing and whose body has no id).
	id string
	// res is the decoded, validated resource.
	res proto.Message
	// ifMatch is the If-Match header ("" for none).
	ifMatch string
	// sourceVersion is the sender's X-Linkbridge-Version (0 for none).
	sourceVersion int
	// mustExist refuses update-as-create (client ids refused).
	mustExist bool
}

// writeResult tells the handler what happened.
type writeResult struct {
	st *Stored
	// created is true for version 1; changed false when the write was the
	// same content (or an older sender version) and stored nothing.
	created, changed bool
}

// put stores a new version of w.res unless it is the same content as the
// current version, in one transaction.
func (s *Server) put(ctx context.Context, w *write) (*writeResult, error) {
	content, err := s.canonical(w.res)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("refgp: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	id := w.id
	if id == "" {
		id = uuid.NewString()
	}
	var cur struct {
		version, source int
		content, body   []byte
		updated         string
	}
	err = tx.QueryRowContext(ctx, `SELECT version, source_version, content, body, last_updated FROM current WHERE type = ? AND id = ?`, w.typ, id).
		Scan(&cur.version, &cur.source, &cur.content, &cur.body, &cur.updated)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("refgp: read current: %w", err)
	}
	if w.ifMatch != "" {
		v, ok := parseETag(w.ifMatch)
		if !ok {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, `If-Match must be a version ETag such as W/"3"`).At("If-Match")
		}
		if !exists || v != cur.version {
			return nil, linkbridge.Errorf(linkbridge.EPRECONDITION, "If-Match names version %d but the current version is %d", v, cur.version).At("If-Match")
		}
	}
	if !exists && w.mustExist {
		crit := "identifier=system|value"
		if !hasIdentifier(w.typ) {
			crit = "_tag=system|code"
		}
		return nil, linkbridge.Errorf(linkbridge.EMETHOD, "this endpoint assigns its own ids: update-as-create with a client id is not supported; use a conditional update (PUT %s?%s)", w.typ, crit)
	}
	if exists && (string(cur.content) == string(content) || (w.sourceVersion > 0 && w.sourceVersion < cur.source)) {
		// Same content (or an older sender version): nothing new is stored,
		// but a newer sender version is remembered so that an older one
		// arriving later cannot overwrite it.
		if w.sourceVersion > cur.source {
			if _, err := tx.ExecContext(ctx, `UPDATE current SET source_version = ? WHERE type = ? AND id = ?`, w.sourceVersion, w.typ, id); err != nil {
				return nil, fmt.Errorf("refgp: update source version: %w", err)
			}
			if err := tx.Commit(); err != nil {
				return nil, fmt.Errorf("refgp: commit: %w", err)
			}
		}
		t, _ := time.Parse(timeLayout, cur.updated)
		return &writeResult{st: &Stored{Type: w.typ, ID: id, Version: cur.version, LastUpdated: t, Body: cur.body}}, nil
	}
	version := cur.version + 1
	now := s.opts.Now().UTC()
	if exists {
		if prev, err := time.Parse(timeLayout, cur.updated); err == nil && !now.After(prev) {
			now = prev.Add(time.Microsecond)
		}
	}
	res := proto.Clone(w.res)
	fhirmap.SetID(res, id)
	fhirmap.SetMeta(res, version, now)
	body, err := s.codec.Encode(res)
	if err != nil {
		return nil, err
	}
	idx := indexOf(body, w.typ, id)
	updated := now.Format(timeLayout)
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (type, id, version, last_updated, body) VALUES (?, ?, ?, ?, ?)`,
		w.typ, id, version, updated, body); err != nil {
		return nil, fmt.Errorf("refgp: insert version: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO current (type, id, version, last_updated, body, content, source_version, patient_id, nhs_number)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, last_updated = excluded.last_updated, body = excluded.body,
			content = excluded.content, source_version = max(current.source_version, excluded.source_version),
			patient_id = excluded.patient_id, nhs_number = excluded.nhs_number`,
		w.typ, id, version, updated, body, content, w.sourceVersion, idx.patient, idx.nhs); err != nil {
		return nil, fmt.Errorf("refgp: upsert current: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM identifiers WHERE type = ? AND id = ?`, w.typ, id); err != nil {
		return nil, fmt.Errorf("refgp: identifiers: %w", err)
	}
	for _, ident := range idx.identifiers {
		if _, err := tx.ExecContext(ctx, `INSERT INTO identifiers (type, id, system, value) VALUES (?, ?, ?, ?)`, w.typ, id, ident[0], ident[1]); err != nil {
			return nil, fmt.Errorf("refgp: identifiers: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE type = ? AND id = ?`, w.typ, id); err != nil {
		return nil, fmt.Errorf("refgp: tags: %w", err)
	}
	for _, tag := range idx.tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (type, id, system, code) VALUES (?, ?, ?, ?)`, w.typ, id, tag[0], tag[1]); err != nil {
			return nil, fmt.Errorf("refgp: tags: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("refgp: commit: %w", err)
	}
	return &writeResult{st: &Stored{Type: w.typ, ID: id, Version: version, LastUpdated: now, Body: body}, created: version == 1, changed: true}, nil
}

// canonical is the resource's JSON without meta and id: two writes with the
// same canonical form are the same content.
func (s *Server) canonical(res proto.Message) ([]byte, error) {
	c := proto.Clone(res)
	m := c.ProtoReflect()
	for _, name := range []string{"meta", "id"} {
		if fd := m.Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil {
			m.Clear(fd)
		}
	}
	return s.codec.Encode(c)
}

// index is what searches need from a resource.
type index struct {
	patient, nhs string
	identifiers  [][2]string
	// tags are meta.tag (system, code).
	tags [][2]string
}

// indexOf reads the patient (literal reference and NHS number), the
// business identifiers and the meta.tag Codings from a resource's JSON.
func indexOf(body []byte, typ, id string) index {
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	var idx index
	meta, _ := doc["meta"].(map[string]any)
	for _, v := range asSlice(meta["tag"]) {
		m, _ := v.(map[string]any)
		sys, _ := m["system"].(string)
		code, _ := m["code"].(string)
		if code != "" {
			idx.tags = append(idx.tags, [2]string{sys, code})
		}
	}
	for _, v := range asSlice(doc["identifier"]) {
		m, _ := v.(map[string]any)
		sys, _ := m["system"].(string)
		val, _ := m["value"].(string)
		if val != "" {
			idx.identifiers = append(idx.identifiers, [2]string{sys, val})
			if typ == "Patient" && sys == linkbridge.NHSNumberSystem {
				idx.nhs = normaliseNHS(val)
			}
		}
	}
	if typ == "Patient" {
		idx.patient = id
		return idx
	}
	for _, field := range []string{"subject", "for", "patient"} {
		ref, _ := doc[field].(map[string]any)
		if ref == nil {
			continue
		}
		if r, _ := ref["reference"].(string); r != "" {
			if i := strings.LastIndex(r, "Patient/"); i >= 0 {
				idx.patient = strings.SplitN(r[i+len("Patient/"):], "/", 2)[0]
			}
		}
		if ident, _ := ref["identifier"].(map[string]any); ident != nil {
			if sys, _ := ident["system"].(string); sys == linkbridge.NHSNumberSystem {
				v, _ := ident["value"].(string)
				idx.nhs = normaliseNHS(v)
			}
		}
		if idx.patient != "" || idx.nhs != "" {
			break
		}
	}
	return idx
}

func normaliseNHS(s string) string {
	return strings.NewReplacer(" ", "", "-", "").Replace(s)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// parseETag reads W/"n" (or "n", or n) as a version.
func parseETag(s string) (int, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// read returns the current version of a resource, or ENOTFOUND.
func (s *Server) read(ctx context.Context, typ, id string) (*Stored, error) {
	st := &Stored{Type: typ, ID: id}
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT version, last_updated, body FROM current WHERE type = ? AND id = ?`, typ, id).Scan(&st.Version, &updated, &st.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s is not held here", typ, id)
	}
	if err != nil {
		return nil, fmt.Errorf("refgp: read: %w", err)
	}
	st.LastUpdated, _ = time.Parse(timeLayout, updated)
	return st, nil
}

// vread returns one version, or ENOTFOUND.
func (s *Server) vread(ctx context.Context, typ, id string, version int) (*Stored, error) {
	st := &Stored{Type: typ, ID: id, Version: version}
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT last_updated, body FROM versions WHERE type = ? AND id = ? AND version = ?`, typ, id, version).Scan(&updated, &st.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s has no version %d", typ, id, version)
	}
	if err != nil {
		return nil, fmt.Errorf("refgp: vread: %w", err)
	}
	st.LastUpdated, _ = time.Parse(timeLayout, updated)
	return st, nil
}

// history returns every version of a resource, newest first.
func (s *Server) history(ctx context.Context, typ, id string) ([]*Stored, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version, last_updated, body FROM versions WHERE type = ? AND id = ? ORDER BY version DESC`, typ, id)
	if err != nil {
		return nil, fmt.Errorf("refgp: history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*Stored
	for rows.Next() {
		st := &Stored{Type: typ, ID: id}
		var updated string
		if err := rows.Scan(&st.Version, &updated, &st.Body); err != nil {
			return nil, fmt.Errorf("refgp: history: %w", err)
		}
		st.LastUpdated, _ = time.Parse(timeLayout, updated)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("refgp: history: %w", err)
	}
	if len(out) == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s is not held here", typ, id)
	}
	return out, nil
}

// Query is a search: the supported parameters, already parsed.
type Query struct {
	Type string
	IDs  []string
	// Identifier is system|value, or value alone.
	Identifier string
	// Tag is a meta.tag token: system|code, code (any system), |code (no
	// system) or system| (any code in the system).
	Tag string
	// Patient is a Patient id (from patient= or subject=).
	Patient string
	// NHSNumber is the patient's NHS number (patient.identifier=).
	NHSNumber string
	// LastUpdated are prefixed instants (gt, ge, lt, le, eq).
	LastUpdated []string
	Count       int
}

// search returns the current versions matching q, oldest change first, and
// the total.
func (s *Server) search(ctx context.Context, q *Query) ([]*Stored, int, error) {
	where := []string{"c.type = ?"}
	args := []any{q.Type}
	if len(q.IDs) > 0 {
		where = append(where, "c.id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.IDs)), ",")+")")
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	if q.Identifier != "" {
		sys, val, ok := strings.Cut(q.Identifier, "|")
		if !ok {
			sys, val = "", q.Identifier
		}
		cond := "EXISTS (SELECT 1 FROM identifiers i WHERE i.type = c.type AND i.id = c.id AND i.value = ?"
		args = append(args, val)
		if ok && sys != "" {
			cond += " AND i.system = ?"
			args = append(args, sys)
		}
		where = append(where, cond+")")
	}
	if q.Tag != "" {
		sys, code, ok := strings.Cut(q.Tag, "|")
		if !ok {
			sys, code = "", q.Tag
		}
		var conds []string
		if code != "" {
			conds = append(conds, "t.code = ?")
			args = append(args, code)
		}
		if ok {
			conds = append(conds, "t.system = ?") // "|code": no system
			args = append(args, sys)
		}
		where = append(where, "EXISTS (SELECT 1 FROM tags t WHERE t.type = c.type AND t.id = c.id AND "+strings.Join(conds, " AND ")+")")
	}
	if q.Patient != "" {
		// Resources written back name the patient by NHS number only (the
		// sender may not know the GP's id): match those too.
		var nhs string
		_ = s.db.QueryRowContext(ctx, `SELECT nhs_number FROM current WHERE type = 'Patient' AND id = ?`, q.Patient).Scan(&nhs)
		if nhs != "" {
			where = append(where, "(c.patient_id = ? OR c.nhs_number = ?)")
			args = append(args, q.Patient, nhs)
		} else {
			where = append(where, "c.patient_id = ?")
			args = append(args, q.Patient)
		}
	}
	if q.NHSNumber != "" {
		where = append(where, "c.nhs_number = ?")
		args = append(args, normaliseNHS(q.NHSNumber))
	}
	for _, lu := range q.LastUpdated {
		op, t, err := parseDateParam(lu)
		if err != nil {
			return nil, 0, err
		}
		where = append(where, "c.last_updated "+op+" ?")
		args = append(args, t)
	}
	sqlWhere := strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM current c WHERE `+sqlWhere, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("refgp: search: %w", err)
	}
	limit := q.Count
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.version, c.last_updated, c.body FROM current c WHERE `+sqlWhere+` ORDER BY c.last_updated, c.id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("refgp: search: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*Stored
	for rows.Next() {
		st := &Stored{Type: q.Type}
		var updated string
		if err := rows.Scan(&st.ID, &st.Version, &updated, &st.Body); err != nil {
			return nil, 0, fmt.Errorf("refgp: search: %w", err)
		}
		st.LastUpdated, _ = time.Parse(timeLayout, updated)
		out = append(out, st)
	}
	return out, total, rows.Err()
}

// parseDateParam reads a FHIR date search value (prefix + date, dateTime or
// instant) into an SQL comparison against stored instants.
func parseDateParam(v string) (string, string, error) {
	op := "="
	if len(v) > 2 {
		switch v[:2] {
		case "gt":
			op, v = ">", v[2:]
		case "ge":
			op, v = ">=", v[2:]
		case "lt":
			op, v = "<", v[2:]
		case "le":
			op, v = "<=", v[2:]
		case "eq":
			op, v = ">=", v[2:]
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return op, t.UTC().Format(timeLayout), nil
		}
	}
	return "", "", linkbridge.Errorf(linkbridge.EINVALID, "_lastUpdated must be a prefix (gt, ge, lt, le, eq) and a date or instant").At("_lastUpdated")
}

// patients lists the Patients held, for the index page.
func (s *Server) patients(ctx context.Context) ([]*Stored, error) {
	st, _, err := s.search(ctx, &Query{Type: "Patient"})
	return st, err
}

// patientRecord returns every current resource of a patient (by literal
// reference or NHS number), and the Patient itself.
func (s *Server) patientRecord(ctx context.Context, id string) (*Stored, []*Stored, error) {
	p, err := s.read(ctx, "Patient", id)
	if err != nil {
		return nil, nil, err
	}
	var all []*Stored
	for _, typ := range Types {
		if typ == "Patient" {
			continue
		}
		st, _, err := s.search(ctx, &Query{Type: typ, Patient: id})
		if err != nil {
			return nil, nil, err
		}
		all = append(all, st...)
	}
	return p, all, nil
}
