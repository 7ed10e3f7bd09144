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
	// Body is the FHIR JSON as served (with meta); empty for a deletion.
	Body []byte
	// Deleted marks the version that records a delete.
	Deleted bool
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
	// noCreate refuses update-as-create (EMETHOD): the id must be held, or
	// have been deleted (an update brings a deleted resource back, as R4
	// allows).
	noCreate bool
	// enforceRefs refuses (EINVALID, issue type processing) a resource
	// whose relative literal references do not resolve to resources held
	// here.
	enforceRefs bool
}

// writeResult tells the handler what happened.
type writeResult struct {
	st *Stored
	// created is true for a new resource (or one brought back after a
	// delete); changed false when the write was the same content (or an
	// older sender version) and stored nothing.
	created, changed bool
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// currentRow is the current version of a resource as put and delete need
// it.
type currentRow struct {
	version, source int
	content, body   []byte
	updated         string
}

// current reads the current version of typ/id; ok is false when it has
// none (never held, or deleted).
func current(ctx context.Context, q queryer, typ, id string) (cur currentRow, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT version, source_version, content, body, last_updated FROM current WHERE type = ? AND id = ?`, typ, id).
		Scan(&cur.version, &cur.source, &cur.content, &cur.body, &cur.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return cur, false, nil
	}
	if err != nil {
		return cur, false, fmt.Errorf("refgp: read current: %w", err)
	}
	return cur, true, nil
}

// lastVersion reads the newest version of typ/id, current or not: version
// 0 when it was never held; deleted when that version records a delete.
func lastVersion(ctx context.Context, q queryer, typ, id string) (version int, deleted bool, updated string, err error) {
	err = q.QueryRowContext(ctx, `SELECT version, deleted, last_updated FROM versions WHERE type = ? AND id = ? ORDER BY version DESC LIMIT 1`, typ, id).
		Scan(&version, &deleted, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, "", nil
	}
	if err != nil {
		return 0, false, "", fmt.Errorf("refgp: read versions: %w", err)
	}
	return version, deleted, updated, nil
}

// checkIfMatch compares an If-Match header ("" for none) with the current
// version (0 for none): EINVALID when it is not a version ETag,
// EPRECONDITION when it names another version.
func checkIfMatch(ifMatch string, current int) error {
	if ifMatch == "" {
		return nil
	}
	v, ok := parseETag(ifMatch)
	if !ok {
		return linkbridge.Errorf(linkbridge.EINVALID, `If-Match must be a version ETag such as W/"3"`).At("If-Match")
	}
	if v != current {
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "If-Match names version %d but the current version is %d", v, current).At("If-Match")
	}
	return nil
}

// after returns the clock's time, moved just past prev (a stored
// last_updated; "" for none) when the clock is not after it: versions of a
// resource are strictly ordered in time.
func (s *Server) after(prev string) time.Time {
	now := s.opts.Now().UTC()
	if p, err := time.Parse(timeLayout, prev); prev != "" && err == nil && !now.After(p) {
		now = p.Add(time.Microsecond)
	}
	return now
}

// put stores a new version of w.res unless it is the same content as the
// current version, in one transaction. A resource that was deleted comes
// back with the next version number.
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
	cur, exists, err := current(ctx, tx, w.typ, id)
	if err != nil {
		return nil, err
	}
	last, prevUpdated := cur.version, cur.updated
	if !exists {
		if last, _, prevUpdated, err = lastVersion(ctx, tx, w.typ, id); err != nil {
			return nil, err
		}
	}
	if !exists && last == 0 && w.noCreate {
		crit := "identifier=system|value"
		if !hasIdentifier(w.typ) {
			crit = "_tag=system|code"
		}
		return nil, linkbridge.Errorf(linkbridge.EMETHOD, "this endpoint assigns its own ids: %s/%s is not held here, and update-as-create (PUT with a client-assigned id) is not supported; create with POST %s or a conditional update (PUT %s?%s)",
			w.typ, id, w.typ, w.typ, crit)
	}
	if err := checkIfMatch(w.ifMatch, cur.version); err != nil {
		return nil, err
	}
	res := proto.Clone(w.res)
	fhirmap.SetID(res, id)
	refs := fhirmap.RelativeRefs(res)
	if w.enforceRefs {
		if err := resolveRefs(ctx, tx, refs); err != nil {
			return nil, err
		}
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
	version := last + 1
	now := s.after(prevUpdated)
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
	if err := unindex(ctx, tx, w.typ, id); err != nil {
		return nil, err
	}
	for _, ident := range idx.identifiers {
		if _, err := tx.ExecContext(ctx, `INSERT INTO identifiers (type, id, system, value) VALUES (?, ?, ?, ?)`, w.typ, id, ident[0], ident[1]); err != nil {
			return nil, fmt.Errorf("refgp: identifiers: %w", err)
		}
	}
	for _, tag := range idx.tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (type, id, system, code) VALUES (?, ?, ?, ?)`, w.typ, id, tag[0], tag[1]); err != nil {
			return nil, fmt.Errorf("refgp: tags: %w", err)
		}
	}
	for _, r := range refs {
		if r.Type == "" {
			continue // neither Type/id nor Type/id/_history/n: names nothing that could be deleted
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO refs (type, id, path, target_type, target_id) VALUES (?, ?, ?, ?, ?)`, w.typ, id, r.Path, r.Type, r.ID); err != nil {
			return nil, fmt.Errorf("refgp: refs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("refgp: commit: %w", err)
	}
	return &writeResult{st: &Stored{Type: w.typ, ID: id, Version: version, LastUpdated: now, Body: body}, created: !exists, changed: true}, nil
}

// unindex removes what searches and the reference check know of a
// resource's current version: identifiers, tags and references.
func unindex(ctx context.Context, tx *sql.Tx, typ, id string) error {
	for _, table := range []string{"identifiers", "tags", "refs"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE type = ? AND id = ?`, typ, id); err != nil {
			return fmt.Errorf("refgp: %s: %w", table, err)
		}
	}
	return nil
}

// resolveRefs checks that every reference names a resource held here (and,
// for Type/id/_history/n, that version of it, not a delete): EINVALID
// naming each one that does not, with its element path, as an issue of
// type processing.
func resolveRefs(ctx context.Context, q queryer, refs []fhirmap.LiteralRef) error {
	var problems, paths []string
	for _, r := range refs {
		why, err := unresolved(ctx, q, r)
		if err != nil {
			return err
		}
		if why != "" {
			problems = append(problems, r.Path+": "+why)
			paths = append(paths, r.Path)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &outcomeError{err: linkbridge.Errorf(linkbridge.EINVALID, "this endpoint enforces referential integrity: a literal reference must name a resource it holds; %s",
		strings.Join(problems, "; ")).At(paths...), issue: issueProcessing}
}

// unresolved says why a reference does not resolve here; "" when it does.
func unresolved(ctx context.Context, q queryer, r fhirmap.LiteralRef) (string, error) {
	if r.Type == "" {
		return fmt.Sprintf("%q is not a literal reference (Type/id or Type/id/_history/n)", r.Raw), nil
	}
	if !supported(r.Type) {
		return fmt.Sprintf("%s is not held here (this endpoint holds no %s)", r, r.Type), nil
	}
	if _, ok, err := current(ctx, q, r.Type, r.ID); err != nil || !ok {
		return fmt.Sprintf("%s/%s is not held here", r.Type, r.ID), err
	}
	if r.Version == "" {
		return "", nil
	}
	noVersion := fmt.Sprintf("%s/%s has no version %s", r.Type, r.ID, r.Version)
	v, err := strconv.Atoi(r.Version)
	if err != nil {
		return noVersion, nil
	}
	var deleted bool
	err = q.QueryRowContext(ctx, `SELECT deleted FROM versions WHERE type = ? AND id = ? AND version = ?`, r.Type, r.ID, v).Scan(&deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows), err == nil && deleted:
		return noVersion, nil
	case err != nil:
		return "", fmt.Errorf("refgp: resolve %s: %w", r, err)
	}
	return "", nil
}

// deleteResult tells the handler what a delete did.
type deleteResult struct {
	// version is the version recording the delete; 0 when nothing was
	// deleted.
	version int
	// already is true when the resource had been deleted before.
	already bool
}

// remove deletes typ/id in one transaction: a new version records the
// delete, and the resource leaves current, the search indexes and the
// reference index. Deleting what is not held (never, or no longer) changes
// nothing and is no error. With enforceRefs, a resource still referenced
// by another held resource is not deleted: ECONFLICT naming the first
// referrer.
func (s *Server) remove(ctx context.Context, typ, id, ifMatch string, enforceRefs bool) (*deleteResult, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("refgp: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	cur, exists, err := current(ctx, tx, typ, id)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(ifMatch, cur.version); err != nil {
		return nil, err
	}
	if !exists {
		last, deleted, _, err := lastVersion(ctx, tx, typ, id)
		if err != nil {
			return nil, err
		}
		return &deleteResult{already: last > 0 && deleted}, nil
	}
	if enforceRefs {
		var rt, rid, path string
		err := tx.QueryRowContext(ctx, `SELECT type, id, path FROM refs WHERE target_type = ? AND target_id = ? AND NOT (type = ? AND id = ?)
			ORDER BY type, id, path LIMIT 1`, typ, id, typ, id).Scan(&rt, &rid, &path)
		if err == nil {
			return nil, linkbridge.Errorf(linkbridge.ECONFLICT, "%s/%s is referenced by %s/%s (%s) and this endpoint enforces referential integrity: delete or update the referring resource first",
				typ, id, rt, rid, path)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("refgp: referrers: %w", err)
		}
	}
	version := cur.version + 1
	updated := s.after(cur.updated).Format(timeLayout)
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (type, id, version, last_updated, body, deleted) VALUES (?, ?, ?, ?, ?, 1)`,
		typ, id, version, updated, []byte{}); err != nil {
		return nil, fmt.Errorf("refgp: insert deletion: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM current WHERE type = ? AND id = ?`, typ, id); err != nil {
		return nil, fmt.Errorf("refgp: delete current: %w", err)
	}
	if err := unindex(ctx, tx, typ, id); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("refgp: commit: %w", err)
	}
	return &deleteResult{version: version}, nil
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

// read returns the current version of a resource: ENOTFOUND when it was
// never held, gone (410) when it was deleted.
func (s *Server) read(ctx context.Context, typ, id string) (*Stored, error) {
	st := &Stored{Type: typ, ID: id}
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT version, last_updated, body FROM current WHERE type = ? AND id = ?`, typ, id).Scan(&st.Version, &updated, &st.Body)
	if errors.Is(err, sql.ErrNoRows) {
		last, deleted, when, err := lastVersion(ctx, s.db, typ, id)
		if err != nil {
			return nil, err
		}
		if deleted {
			return nil, gone(typ, id, last, when)
		}
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s is not held here", typ, id)
	}
	if err != nil {
		return nil, fmt.Errorf("refgp: read: %w", err)
	}
	st.LastUpdated, _ = time.Parse(timeLayout, updated)
	return st, nil
}

// vread returns one version: ENOTFOUND when there is no such version,
// gone (410) for the version that records a delete.
func (s *Server) vread(ctx context.Context, typ, id string, version int) (*Stored, error) {
	st := &Stored{Type: typ, ID: id, Version: version}
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT last_updated, body, deleted FROM versions WHERE type = ? AND id = ? AND version = ?`, typ, id, version).Scan(&updated, &st.Body, &st.Deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s has no version %d", typ, id, version)
	}
	if err != nil {
		return nil, fmt.Errorf("refgp: vread: %w", err)
	}
	if st.Deleted {
		return nil, gone(typ, id, version, updated)
	}
	st.LastUpdated, _ = time.Parse(timeLayout, updated)
	return st, nil
}

// history returns every version of a resource, newest first, deletes
// included.
func (s *Server) history(ctx context.Context, typ, id string) ([]*Stored, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version, last_updated, body, deleted FROM versions WHERE type = ? AND id = ? ORDER BY version DESC`, typ, id)
	if err != nil {
		return nil, fmt.Errorf("refgp: history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*Stored
	for rows.Next() {
		st := &Stored{Type: typ, ID: id}
		var updated string
		if err := rows.Scan(&st.Version, &updated, &st.Body, &st.Deleted); err != nil {
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
