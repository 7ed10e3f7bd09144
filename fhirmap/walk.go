package fhirmap

import (
	"errors"
	"strconv"
	"strings"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errSkipChildren, returned by a walk's visit function, walks no deeper into
// the message visit was called for; the walk goes on with its siblings.
var errSkipChildren = errors.New("fhirmap: skip children")

// walk calls visit for m and every message below it, depth first, leaving
// out contained resources (they are entries of their own, ExpandContained)
// and map fields; root names m in element paths (its resource type). It is
// the one walk over a resource's elements: the reference walk (walkRefs),
// identifier normalisation and the SNOMED CT check use it. The element
// path, e.g. "Task.input[0].type", is built only when visit asks for it
// (on an error): building it for every element cost more than the rest of
// the walk. visit's error ends the walk and is returned, except
// errSkipChildren.
func walk(m protoreflect.Message, root string, visit func(m protoreflect.Message, path func() string) error) error {
	w := &walker{root: root, visit: visit}
	w.segs = w.buf[:0]
	w.pathFn = w.path
	w.fieldFn = w.field
	return w.walk(m)
}

// walkRefs calls fn for every Reference in m (outside contained resources,
// and not inside another Reference: Reference.identifier.assigner is left
// alone), with its element path built on demand as walk builds it. fn's
// error ends the walk and is returned.
func walkRefs(m protoreflect.Message, root string, fn func(ref *dpb.Reference, path func() string) error) error {
	return walk(m, root, func(m protoreflect.Message, path func() string) error {
		ref, ok := m.Interface().(*dpb.Reference)
		if !ok {
			return nil
		}
		if err := fn(ref, path); err != nil {
			return err
		}
		return errSkipChildren
	})
}

// pathSeg is one step of an element path: a field, and the index of the
// element in it when it repeats.
type pathSeg struct {
	fd    protoreflect.FieldDescriptor
	index int // -1 for a single element
}

// walker is one walk's state. Its callbacks are bound once per walk, and
// an error is kept in err rather than in a variable each Range callback
// captures, so that visiting a message allocates nothing.
type walker struct {
	root    string
	segs    []pathSeg
	buf     [8]pathSeg // segs' first backing array: paths are rarely deeper
	visit   func(m protoreflect.Message, path func() string) error
	pathFn  func() string
	fieldFn func(protoreflect.FieldDescriptor, protoreflect.Value) bool
	err     error
}

// path renders the current element path, e.g. "Task.input[0].type", in
// FHIR's JSON element names.
func (w *walker) path() string {
	var b strings.Builder
	b.WriteString(w.root)
	for _, s := range w.segs {
		b.WriteByte('.')
		b.WriteString(s.fd.JSONName())
		if s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func (w *walker) walk(m protoreflect.Message) error {
	if err := w.visit(m, w.pathFn); err != nil {
		if err == errSkipChildren {
			return nil
		}
		w.err = err
		return err
	}
	m.Range(w.fieldFn)
	return w.err
}

// field walks the messages of one field of the message being walked (a
// Range callback); it stops the Range once the walk has an error.
func (w *walker) field(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	if fd.Kind() != protoreflect.MessageKind || fd.Name() == "contained" || fd.IsMap() {
		return true
	}
	if fd.IsList() {
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			w.segs = append(w.segs, pathSeg{fd, i})
			err := w.walk(l.Get(i).Message())
			w.segs = w.segs[:len(w.segs)-1]
			if err != nil {
				return false
			}
		}
		return true
	}
	w.segs = append(w.segs, pathSeg{fd, -1})
	err := w.walk(v.Message())
	w.segs = w.segs[:len(w.segs)-1]
	return err == nil
}
