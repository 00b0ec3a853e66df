package signaling

import (
	"fmt"
	"net/http"

	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// labels are the server's words for what it writes for everyone (Config.Labels): French
// unless the deployment chose another language.
func (c Config) labels() council.Labels {
	if c.Labels.Lang == "" {
		return council.FrenchLabels()
	}
	return c.Labels
}

// withChapterWords gives the recording the titles of the chapters it adds itself, in l's
// words: broadcast knows no language, council.Labels is the one source of them.
func withChapterWords(rc broadcast.RecordingConfig, l council.Labels) broadcast.RecordingConfig {
	rc.BleepTitle, rc.ResumedTitleF, rc.ResumedTitle = l.ChapterBleep, l.ChapterResumedF, l.ChapterResumed
	return rc
}

// minutesLabels are the words of the minutes a reader asked for with ?lang= (fr or en), the
// server's own when they asked for none.
func (c Config) minutesLabels(lang string) (council.Labels, error) {
	if lang == "" {
		return c.labels(), nil
	}
	l, err := council.LabelsFor(lang)
	if err != nil {
		return council.Labels{}, fmt.Errorf("lang %w", err)
	}
	return l, nil
}

// refuseRoster answers a roster file that cannot be read: 400 with the reason in the caller's
// language beside both wordings, prefixed with the field that carried the file (if any), and
// the line at fault (null when the file as a whole is).
func refuseRoster(w http.ResponseWriter, r *http.Request, field string, le *council.RosterLineError) {
	var line any
	if le.Line > 0 {
		line = le.Line
	}
	httpapi.RefuseWith(w, r, http.StatusBadRequest, field+le.In(council.EnglishLabels()), field+le.In(council.FrenchLabels()),
		map[string]any{"line": line})
}
