// Package refmesh is the reference MESH mailbox server and the reference
// GP document inbox behind it: a test and demo peer for the send-document
// route, as refgp is for the FHIR route. The server implements the MESH
// API routes the client uses (authentication checked as MESH does,
// mailboxes in SQLite, automatic routing to a registered practice,
// chunking, inbox, acknowledgement, non-delivery reports); the GP inbox
// reads its mailbox, validates each ITK3 message and answers with ITK3
// infrastructure and business acknowledgements. docs/send-document.md
// lists what it does not implement.
package refmesh

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge/adapter/mesh"
)

const schema = `
CREATE TABLE IF NOT EXISTS mailbox (id TEXT PRIMARY KEY, password TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registration (nhs_number TEXT NOT NULL, birth_date TEXT NOT NULL, surname TEXT NOT NULL,
	mailbox TEXT NOT NULL, PRIMARY KEY (nhs_number));
CREATE TABLE IF NOT EXISTS message (id TEXT PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,
	to_address TEXT NOT NULL, workflow_id TEXT NOT NULL, subject TEXT NOT NULL DEFAULT '', local_id TEXT NOT NULL DEFAULT '',
	content_type TEXT NOT NULL DEFAULT '', message_type TEXT NOT NULL DEFAULT 'DATA', linked_id TEXT NOT NULL DEFAULT '',
	status_code TEXT NOT NULL DEFAULT '', status_desc TEXT NOT NULL DEFAULT '',
	chunks_total INTEGER NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (message_id TEXT NOT NULL, no INTEGER NOT NULL, data BLOB NOT NULL,
	PRIMARY KEY (message_id, no));
CREATE TABLE IF NOT EXISTS nonce (mailbox TEXT NOT NULL, nonce TEXT NOT NULL, count TEXT NOT NULL, at TEXT NOT NULL,
	PRIMARY KEY (mailbox, nonce, count));
`

// Server is the reference MESH mailbox server.
type Server struct {
	db *sql.DB
	// SharedKey is the environment's shared key of the HMAC.
	SharedKey string
	// MaxSkew is how far an authentication timestamp may be from the
	// server's clock (default 2h; docs/send-document.md#authentication).
	MaxSkew time.Duration
	// MaxChunk refuses larger chunks with 413 (default 100 MB).
	MaxChunk int64
	// CatchAll, when set, receives every automatic-routing address no
	// registration matches (a demo convenience: real MESH would send a
	// non-delivery report).
	CatchAll string
	Logger   *slog.Logger
	Now      func() time.Time
	mu       sync.Mutex // serialises writes (one SQLite writer)
}

// Open opens (creating) the server's SQLite file through the database/sql
// driver "sqlite", which adapter/sqlite registers (cmd/ imports it).
func Open(path, sharedKey string) (*Server, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("refmesh: schema: %w", err)
	}
	return &Server{db: db, SharedKey: sharedKey, MaxSkew: 2 * time.Hour, MaxChunk: 100 << 20,
		Logger: slog.New(slog.DiscardHandler), Now: time.Now}, nil
}

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// AddMailbox creates (or re-passwords) a mailbox.
func (s *Server) AddMailbox(id, password string) error {
	_, err := s.db.Exec(`INSERT INTO mailbox (id, password) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET password = excluded.password`, id, password)
	return err
}

// Register records that a patient is registered at the practice whose
// mailbox is given, for automatic routing (birthDate YYYY-MM-DD).
func (s *Server) Register(nhsNumber, birthDate, surname, mailbox string) error {
	t, err := time.Parse("2006-01-02", birthDate)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(`INSERT INTO registration (nhs_number, birth_date, surname, mailbox) VALUES (?, ?, ?, ?)
		ON CONFLICT (nhs_number) DO UPDATE SET birth_date = excluded.birth_date, surname = excluded.surname, mailbox = excluded.mailbox`,
		nhsNumber, t.Format("02012006"), strings.ToUpper(surname), mailbox)
	return err
}

// Handler returns the MESH API routes.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	m := r.PathPrefix("/messageexchange/{mailbox}").Subrouter()
	m.Use(s.authenticate)
	m.HandleFunc("", s.handshake).Methods(http.MethodGet, http.MethodPost)
	m.HandleFunc("/outbox", s.send).Methods(http.MethodPost)
	m.HandleFunc("/outbox/{id}/{chunk:[0-9]+}", s.sendChunk).Methods(http.MethodPost)
	m.HandleFunc("/inbox", s.inbox).Methods(http.MethodGet)
	m.HandleFunc("/inbox/{id}", s.download).Methods(http.MethodGet)
	m.HandleFunc("/inbox/{id}/{chunk:[0-9]+}", s.download).Methods(http.MethodGet)
	m.HandleFunc("/inbox/{id}/status/acknowledged", s.acknowledge).Methods(http.MethodPut)
	return r
}

func (s *Server) now() time.Time { return s.Now().UTC() }

func meshError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorCode": code, "errorDescription": desc})
}

// authenticate checks the NHSMESH Authorization header: the mailbox of the
// path, its password and the shared key in the HMAC, a timestamp within
// MaxSkew, and a nonce not used before.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		box := mux.Vars(r)["mailbox"]
		a, err := mesh.ParseAuth(r.Header.Get("Authorization"))
		if err != nil || a.Mailbox != box {
			meshError(w, http.StatusUnauthorized, "EPL-151", "authentication failed")
			return
		}
		var pw string
		if err := s.db.QueryRow(`SELECT password FROM mailbox WHERE id = ?`, box).Scan(&pw); err != nil {
			meshError(w, http.StatusUnauthorized, "EPL-151", "authentication failed")
			return
		}
		if err := a.Verify(pw, s.SharedKey, s.now(), s.MaxSkew); err != nil {
			s.Logger.Info("refmesh: authentication refused", slog.String("mailbox", box), slog.String("reason", err.Error()))
			meshError(w, http.StatusUnauthorized, "EPL-151", "authentication failed")
			return
		}
		s.mu.Lock()
		_, err = s.db.Exec(`INSERT INTO nonce (mailbox, nonce, count, at) VALUES (?, ?, ?, ?)`, box, a.Nonce, a.Count, s.now().Format(time.RFC3339))
		s.mu.Unlock()
		if err != nil {
			meshError(w, http.StatusUnauthorized, "EPL-151", "nonce already used")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handshake(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"mailboxId": mux.Vars(r)["mailbox"]})
}

// route resolves Mex-To: a mailbox id, or GPPROVIDER_<nhs>_<DDMMYYYY>_<surname>
// matched against the registrations. ok is false when nothing matches.
func (s *Server) route(to string) (string, bool) {
	if rest, ok := strings.CutPrefix(to, "GPPROVIDER_"); ok {
		p := strings.SplitN(rest, "_", 3)
		if len(p) != 3 {
			return "", false
		}
		var box string
		err := s.db.QueryRow(`SELECT mailbox FROM registration WHERE nhs_number = ? AND birth_date = ? AND surname = ?`,
			p[0], p[1], strings.ToUpper(p[2])).Scan(&box)
		if err != nil && s.CatchAll != "" {
			return s.CatchAll, true
		}
		return box, err == nil
	}
	var id string
	err := s.db.QueryRow(`SELECT id FROM mailbox WHERE id = ?`, to).Scan(&id)
	return id, err == nil
}

func (s *Server) readChunk(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, s.MaxChunk+1))
	if err != nil {
		meshError(w, http.StatusBadRequest, "EPL-150", "unreadable body")
		return nil, false
	}
	if int64(len(b)) > s.MaxChunk {
		meshError(w, http.StatusRequestEntityTooLarge, "EPL-153", "chunk over the size limit")
		return nil, false
	}
	return b, true
}

// send stores a new message (its first chunk). An address automatic
// routing cannot resolve is accepted and answered by a non-delivery
// report in the sender's inbox, as MESH does.
func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	box := mux.Vars(r)["mailbox"]
	if r.Header.Get(mesh.HeaderFrom) != box {
		meshError(w, http.StatusForbidden, "EPL-152", "Mex-From is not the authenticated mailbox")
		return
	}
	to, wf := r.Header.Get(mesh.HeaderTo), r.Header.Get(mesh.HeaderWorkflowID)
	if to == "" || wf == "" {
		meshError(w, http.StatusBadRequest, "EPL-152", "Mex-To and Mex-WorkflowID are required")
		return
	}
	n, total, err := mesh.ParseChunkRange(r.Header.Get(mesh.HeaderChunkRange))
	if err != nil || n != 1 {
		meshError(w, http.StatusBadRequest, "EPL-152", "the first chunk's range must be 1:n")
		return
	}
	b, ok := s.readChunk(w, r)
	if !ok {
		return
	}
	id := strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", ""))
	recipient, routed := s.route(to)
	state := "uploading"
	if total == 1 {
		state = "ready"
	}
	now := s.now().Format(time.RFC3339Nano)
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.Begin()
	if err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	defer tx.Rollback() //nolint:errcheck // after Commit
	if !routed {
		recipient, state = "", "undeliverable"
	}
	if _, err := tx.Exec(`INSERT INTO message (id, sender, recipient, to_address, workflow_id, subject, local_id, content_type,
		chunks_total, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, box, recipient, to, wf,
		r.Header.Get(mesh.HeaderSubject), r.Header.Get(mesh.HeaderLocalID), r.Header.Get(mesh.HeaderContentType), total, state, now); err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	if _, err := tx.Exec(`INSERT INTO chunk (message_id, no, data) VALUES (?, 1, ?)`, id, b); err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	if !routed {
		// MESH's report: status ERROR, code 14 (undeliverable), linked to
		// the message it reports on.
		rid := strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", ""))
		if _, err := tx.Exec(`INSERT INTO message (id, sender, recipient, to_address, workflow_id, local_id, message_type, linked_id,
			status_code, status_desc, chunks_total, state, created_at) VALUES (?, '', ?, ?, ?, ?, 'REPORT', ?, '14', ?, 1, 'ready', ?)`,
			rid, box, box, wf, r.Header.Get(mesh.HeaderLocalID), id, "Message not deliverable: no registered practice matches the address", now); err != nil {
			meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
			return
		}
		if _, err := tx.Exec(`INSERT INTO chunk (message_id, no, data) VALUES (?, 1, X'')`, rid); err != nil {
			meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
			return
		}
	}
	if err := tx.Commit(); err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"message_id": id})
}

// sendChunk stores chunk n of a message being uploaded; a chunk sent again
// replaces the first copy. The last chunk makes the message deliverable.
func (s *Server) sendChunk(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	box, id := v["mailbox"], v["id"]
	no, _ := strconv.Atoi(v["chunk"])
	b, ok := s.readChunk(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int
	var state string
	err := s.db.QueryRow(`SELECT chunks_total, state FROM message WHERE id = ? AND sender = ?`, id, box).Scan(&total, &state)
	if errors.Is(err, sql.ErrNoRows) {
		meshError(w, http.StatusNotFound, "EPL-154", "no such message")
		return
	} else if err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	if no < 2 || no > total {
		meshError(w, http.StatusBadRequest, "EPL-152", "chunk number outside the range")
		return
	}
	if _, err := s.db.Exec(`INSERT INTO chunk (message_id, no, data) VALUES (?, ?, ?)
		ON CONFLICT (message_id, no) DO UPDATE SET data = excluded.data`, id, no, b); err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	var have int
	if err := s.db.QueryRow(`SELECT count(*) FROM chunk WHERE message_id = ?`, id).Scan(&have); err == nil && have == total && state == "uploading" {
		if _, err := s.db.Exec(`UPDATE message SET state = 'ready' WHERE id = ?`, id); err != nil {
			meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"message_id": id})
}

func (s *Server) inbox(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.Query(`SELECT id FROM message WHERE recipient = ? AND state = 'ready' ORDER BY created_at, id LIMIT 500`, mux.Vars(r)["mailbox"])
	if err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	defer func() { _ = rows.Close() }()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
			return
		}
		ids = append(ids, id)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": ids})
}

// download returns a chunk of a message in the inbox with its MESH
// headers: 206 while more chunks follow, 200 for the last.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	box, id := v["mailbox"], v["id"]
	no := 1
	if c := v["chunk"]; c != "" {
		no, _ = strconv.Atoi(c)
	}
	var sender, to, wf, subject, localID, ctype, mtype, linked, code, desc string
	var total int
	err := s.db.QueryRow(`SELECT sender, to_address, workflow_id, subject, local_id, content_type, message_type, linked_id,
		status_code, status_desc, chunks_total FROM message WHERE id = ? AND recipient = ? AND state = 'ready'`, id, box).Scan(
		&sender, &to, &wf, &subject, &localID, &ctype, &mtype, &linked, &code, &desc, &total)
	if err != nil {
		meshError(w, http.StatusNotFound, "EPL-154", "no such message")
		return
	}
	var data []byte
	if err := s.db.QueryRow(`SELECT data FROM chunk WHERE message_id = ? AND no = ?`, id, no).Scan(&data); err != nil {
		meshError(w, http.StatusNotFound, "EPL-154", "no such chunk")
		return
	}
	h := w.Header()
	h.Set(mesh.HeaderMessageID, id)
	h.Set(mesh.HeaderFrom, sender)
	h.Set(mesh.HeaderTo, to)
	h.Set(mesh.HeaderWorkflowID, wf)
	h.Set(mesh.HeaderMessageType, mtype)
	h.Set(mesh.HeaderChunkRange, strconv.Itoa(no)+":"+strconv.Itoa(total))
	for k, v := range map[string]string{mesh.HeaderSubject: subject, mesh.HeaderLocalID: localID, mesh.HeaderContentType: ctype,
		mesh.HeaderLinkedMsgID: linked, mesh.HeaderStatusCode: code, mesh.HeaderStatusDesc: desc} {
		if v != "" {
			h.Set(k, v)
		}
	}
	if mtype == "REPORT" {
		h.Set(mesh.HeaderStatusSuccess, "ERROR")
	}
	h.Set("Content-Type", "application/octet-stream")
	if no < total {
		w.WriteHeader(http.StatusPartialContent)
	}
	_, _ = w.Write(data)
}

func (s *Server) acknowledge(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	s.mu.Lock()
	res, err := s.db.Exec(`UPDATE message SET state = 'acknowledged' WHERE id = ? AND recipient = ? AND state = 'ready'`, v["id"], v["mailbox"])
	s.mu.Unlock()
	if err != nil {
		meshError(w, http.StatusServiceUnavailable, "EPL-500", "try again")
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		meshError(w, http.StatusNotFound, "EPL-154", "no such message")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"messageId": v["id"]})
}

// Delivered counts messages delivered to a mailbox (ready or read) with a
// workflow id, for tests and the demo.
func (s *Server) Delivered(ctx context.Context, mailbox, workflowID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM message WHERE recipient = ? AND workflow_id = ? AND state IN ('ready', 'acknowledged')`,
		mailbox, workflowID).Scan(&n)
	return n, err
}
