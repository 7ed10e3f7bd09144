package senddoc

import (
	"bytes"
	"fmt"

	"codeberg.org/go-pdf/fpdf"
)

// PDF renders the document as an A4 PDF with the core Helvetica font
// (cp1252, enough for English names and text; other characters are
// replaced). The output is deterministic for an input: its creation date
// is the input's Now and its catalogue is sorted.
func PDF(in *Input) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	c := render(in)
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCreationDate(in.Now.UTC())
	f.SetModificationDate(in.Now.UTC())
	f.SetCatalogSort(true)
	f.SetTitle(Title, true)
	f.SetAuthor(party(in.Service), true)
	f.SetCreator("linkbridge", true)
	tr := f.UnicodeTranslatorFromDescriptor("")
	f.SetMargins(18, 18, 18)
	f.SetAutoPageBreak(true, 18)
	f.SetFooterFunc(func() {
		f.SetY(-14)
		f.SetFont("Helvetica", "", 8)
		f.SetTextColor(90, 90, 90)
		f.CellFormat(0, 5, tr(fmt.Sprintf("%s - NHS number %s - version %d - page %d of {nb}", Title, formatNHS(in.Patient.NHSNumber), max(in.Version, 1), f.PageNo())), "", 0, "C", false, 0, "")
	})
	f.AliasNbPages("{nb}")
	f.AddPage()
	f.SetFont("Helvetica", "B", 16)
	f.SetTextColor(0, 48, 135) // NHS blue
	f.MultiCell(0, 8, tr(c.title), "", "L", false)
	f.Ln(2)
	f.SetTextColor(0, 0, 0)
	rows := func(ls []line) {
		for _, l := range ls {
			if l.value == "" {
				continue
			}
			f.SetFont("Helvetica", "B", 10)
			y := f.GetY()
			f.MultiCell(48, 5.5, tr(l.label), "", "L", false)
			yl := f.GetY()
			f.SetXY(18+50, y)
			f.SetFont("Helvetica", "", 10)
			f.MultiCell(0, 5.5, tr(l.value), "", "L", false)
			if f.GetY() < yl {
				f.SetY(yl)
			}
		}
	}
	f.SetFillColor(232, 237, 238)
	rows(c.header)
	for _, s := range c.sections {
		f.Ln(4)
		f.SetFont("Helvetica", "B", 12)
		f.SetTextColor(0, 48, 135)
		f.CellFormat(0, 7, tr(s.title), "B", 1, "L", false, 0, "")
		f.SetTextColor(0, 0, 0)
		f.Ln(1)
		rs := s.rows
		if s.code != "" {
			rs = append(rs, line{"SNOMED CT", s.display + " (" + s.code + ")"})
		}
		rows(rs)
	}
	var b bytes.Buffer
	if err := f.Output(&b); err != nil {
		return nil, fmt.Errorf("senddoc: render PDF: %w", err)
	}
	return b.Bytes(), nil
}
