package signaling

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// The minutes approved: GET /minutes gives, in its Minutes-Digest header, the SHA-256 of the
// Markdown text in the language asked for; the chair or the clerk approves the closed sitting's
// minutes by sending that digest back, and the approval is journalled (council.MinutesApproved)
// only if the text has not changed since (a bleep recorded meanwhile, say).

// minutesDigestHeader carries the digest of the minutes' Markdown text, whatever the format
// served, since that text is the one approved.
const minutesDigestHeader = "Minutes-Digest"

// minutesMarkdown renders the room's minutes as Markdown in l's words, with their digest.
func (d *deliberation) minutesMarkdown(m *council.Minutes, l *council.Labels) ([]byte, string, error) {
	var b bytes.Buffer
	if err := m.WriteMarkdown(&b, l); err != nil {
		return nil, "", fmt.Errorf("render the minutes: %w", err)
	}
	sum := sha256.Sum256(b.Bytes())
	return b.Bytes(), hex.EncodeToString(sum[:]), nil
}

// approveMinutes records the caller's approval of the minutes they read: the body names the
// digest (Minutes-Digest of GET /minutes) and the language (lang, the server's when empty).
func (d *deliberation) approveMinutes(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Digest string `json:"digest"`
		Lang   string `json:"lang"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpapi.WriteError(w, 400, fmt.Sprintf("body is not the expected JSON {\"digest\": …, \"lang\": …}: %v", err))
		return
	}
	labels, err := d.srv.cfg.minutesLabels(req.Lang)
	if err != nil {
		httpapi.WriteError(w, 400, err.Error())
		return
	}
	c := httpapi.CallerOf(r)
	var approval council.MinutesApproval
	_, _, ok := d.onDesk(w, r, func(ctx context.Context, dk *desk) (council.View, error) {
		return dk.execute(ctx, actorOf(c), func(h council.Header) (council.Command, error) {
			m, err := d.draftMinutes(ctx, dk)
			if err != nil {
				return nil, err
			}
			_, current, err := d.minutesMarkdown(m, &labels)
			if err != nil {
				return nil, err
			}
			approval = council.MinutesApproval{By: h.By, At: h.At, Digest: req.Digest, Lang: labels.Lang}
			return council.ApproveMinutes{Header: h, Digest: req.Digest, Lang: labels.Lang, Current: current}, nil
		})
	})
	if ok {
		httpapi.WriteJSON(w, 200, approval)
	}
}
