package webclient

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
)

// The pages' words live in static/i18n/fr.js and en.js only. These tests read every page (its
// HTML and its scripts, ours: not the vendored SDK, not the catalogs) and fail on a key either
// catalog lacks, and on words written in a page instead of a catalog.

// pageFiles lists our pages' files ending in ext.
func pageFiles(t *testing.T, ext string) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(staticFiles, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (name == "static/vendor" || name == "static/i18n") {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ext) {
			out = append(out, strings.TrimPrefix(name, "static/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no %s page found", ext)
	}
	return out
}

// jsString is a string literal of a script, or one text part of a template literal, with the
// code just before it (to tell a class list from a sentence).
type jsString struct {
	text, before string
	line         int
}

// jsStrings lists the string literals of a script. It knows JavaScript's comments, strings,
// template literals (with ${…} inside, to any depth) and regular expression literals, told from
// a division by what precedes the slash; it returns an error rather than a wrong list when the
// script does not end where it should.
func jsStrings(src string) ([]jsString, error) {
	var out []jsString
	var templates []int // brace depth at which each open ${ began
	depth, line, i := 0, 1, 0
	var prev byte // last significant character; 'x' after a name, number, string or regex
	prevWord := ""
	emit := func(s string, at int) {
		out = append(out, jsString{text: s, before: src[max(at-40, 0):at], line: line})
	}
	// template reads template text from i up to its end (false) or the next ${ (true).
	template := func() (string, bool, error) {
		start := i
		for i < len(src) {
			switch c := src[i]; {
			case c == '\\':
				i += 2
				continue
			case c == '`':
				i++
				return src[start : i-1], false, nil
			case c == '$' && i+1 < len(src) && src[i+1] == '{':
				i += 2
				return src[start : i-2], true, nil
			case c == '\n':
				line++
			}
			i++
		}
		return "", false, fmt.Errorf("line %d: unterminated template literal", line)
	}
	// templateText emits the template text that starts at i (found at at) and, when a ${ ends
	// it, enters the expression.
	templateText := func(at int) error {
		s, open, err := template()
		if err != nil {
			return err
		}
		emit(s, at)
		if open {
			templates = append(templates, depth)
			depth++
		}
		return nil
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case c == '/' && regexMayFollow(prev, prevWord):
			inClass := false
			for i++; i < len(src) && (src[i] != '/' || inClass); i++ {
				switch src[i] {
				case '\\':
					i++
				case '[':
					inClass = true
				case ']':
					inClass = false
				case '\n':
					return nil, fmt.Errorf("line %d: unterminated regular expression", line)
				}
			}
			for i++; i < len(src) && unicode.IsLetter(rune(src[i])); i++ {
			}
			prev, prevWord = 'x', ""
		case c == '\'' || c == '"':
			at := i
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' {
					i++
				} else if src[i] == '\n' {
					return nil, fmt.Errorf("line %d: unterminated string", line)
				}
			}
			if i >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			emit(src[at+1:i], at)
			i++
			prev, prevWord = 'x', ""
		case c == '`':
			at := i
			i++
			if err := templateText(at); err != nil {
				return nil, err
			}
			prev, prevWord = 'x', ""
		case c == '{':
			depth++
			i++
			prev, prevWord = c, ""
		case c == '}':
			depth--
			i++
			prev, prevWord = c, ""
			if n := len(templates); n > 0 && templates[n-1] == depth {
				templates = templates[:n-1]
				if err := templateText(i); err != nil {
					return nil, err
				}
				prev = 'x'
			}
		case c == '_' || c == '$' || c >= 0x80 || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || src[j] == '$' || src[j] >= 0x80 || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			prev, prevWord, i = 'x', src[i:j], j
		default:
			prev, prevWord = c, ""
			i++
		}
	}
	if depth != 0 || len(templates) > 0 {
		return nil, fmt.Errorf("braces do not balance (depth %d at the end)", depth)
	}
	return out, nil
}

// regexMayFollow says whether a slash after prev (the last significant character, 'x' for an
// operand) and prevWord (the name just before, if any) begins a regular expression.
func regexMayFollow(prev byte, prevWord string) bool {
	switch prevWord {
	case "return", "typeof", "case", "in", "of", "new", "delete", "void", "throw", "else", "do", "await", "yield":
		return true
	}
	return prev != 'x' && prev != ')' && prev != ']' && prev != '}'
}

func TestJSStringsReadsTheLiteralsOfAScript(t *testing.T) {
	src := "// it's a comment\nconst re = /'[^/]'/g; const a = 4 / 2 / 1\n" +
		"h('p', { class: 'a b', text: `x ${y ? 'z' : `w ${n}`} v` }) /* \"not\" */ const s = \"d\\\"q\"\n"
	got, err := jsStrings(src)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, s := range got {
		texts = append(texts, s.text)
	}
	want := []string{"p", "a b", "x ", "z", "w ", "", " v", `d\"q`}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("literals %q, want %q", texts, want)
	}
	for _, bad := range []string{"'open", "`a ${b", "x = {", "/* open"} {
		if _, err := jsStrings(bad); err == nil {
			t.Errorf("%q read without an error", bad)
		}
	}
}

var (
	keyUseRe    = regexp.MustCompile(`\bt\(\s*'([a-zA-Z0-9_.]+)'`)
	keyShapeRe  = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+)+$`)
	classCodeRe = regexp.MustCompile(`(\bclass\s*:|\bclassName\s*=|\bclassList\.\w+\()\s*$`)
	wordRe      = regexp.MustCompile(`[A-Za-z]{2,}`)
)

// usedKeys lists the catalog keys each page names: t('key') in its scripts, any string shaped
// like a key of a catalog's families (join.dev.refused, watch.status.live), and data-i18n in
// its HTML. Keys built at run time (council.choice.${c}) are checked by
// test/browser/council-unit.test.mjs from the lists they are built from.
func usedKeys(t *testing.T, families map[string]bool) map[string][]string {
	t.Helper()
	used := map[string][]string{} // key -> files
	use := func(key, file string) {
		if !slices.Contains(used[key], file) {
			used[key] = append(used[key], file)
		}
	}
	for _, f := range pageFiles(t, ".js") {
		src := string(staticFile(t, f))
		for _, m := range keyUseRe.FindAllStringSubmatch(src, -1) {
			use(m[1], f)
		}
		strs, err := jsStrings(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range strs {
			if keyShapeRe.MatchString(s.text) && families[strings.SplitN(s.text, ".", 2)[0]] && !strings.HasSuffix(s.text, ".js") {
				use(s.text, f)
			}
		}
	}
	for _, f := range pageFiles(t, ".html") {
		eachElement(t, f, func(n *html.Node) {
			if k := attr(n, "data-i18n"); k != "" {
				use(k, f)
			}
		})
	}
	return used
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func eachElement(t *testing.T, page string, fn func(*html.Node)) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(staticFile(t, page)))
	if err != nil {
		t.Fatalf("%s: %v", page, err)
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			fn(n)
		}
		for c := range n.ChildNodes() {
			walk(c)
		}
	}
	walk(doc)
}

// TestEveryPageUsesOnlyKeysBothCatalogsHave: a key named by a page's script or HTML exists in
// French and in English.
func TestEveryPageUsesOnlyKeysBothCatalogsHave(t *testing.T) {
	fr, en := catalog(t, "fr"), catalog(t, "en")
	families := map[string]bool{}
	for k := range fr {
		families[strings.SplitN(k, ".", 2)[0]] = true
	}
	used := usedKeys(t, families)
	for k, files := range used {
		if _, ok := fr[k]; !ok {
			t.Errorf("%v use %s, which fr.js lacks", files, k)
		}
		if _, ok := en[k]; !ok {
			t.Errorf("%v use %s, which en.js lacks", files, k)
		}
	}
	for _, must := range []string{"watch.status.live", "watch.title", "app.skip", "room.state.connecting", "join.dev.refused"} {
		if len(used[must]) == 0 {
			t.Errorf("%s is not found among the keys used: the scan is broken", must)
		}
	}
}

// developerText are the sentences of page scripts that nobody reads on a page: the detail of an
// invitation refused for its kind, which the join page words from the catalogs.
var developerText = map[string]bool{"not a JWT": true, "no claims": true}

// forPeople says whether a script's literal reads as words meant for people: letters beyond
// ASCII or typographic punctuation (French, or any prose with … ’ « »), or two words or more
// where the code does not take a class list, an address or an SVG path.
func forPeople(s jsString) bool {
	if strings.ContainsAny(s.text, "…’‘«»“”") {
		return true
	}
	for _, r := range s.text {
		if r > unicode.MaxASCII && unicode.IsLetter(r) {
			return true
		}
	}
	if len(wordRe.FindAllString(s.text, 2)) < 2 || !strings.Contains(strings.TrimSpace(s.text), " ") {
		return false
	}
	if classCodeRe.MatchString(s.before) || strings.Contains(s.text, "://") || strings.HasPrefix(s.text, "/") || strings.HasPrefix(s.text, ".") || strings.HasPrefix(s.text, "[") {
		return false
	}
	return !regexp.MustCompile(`^M[\d.]`).MatchString(s.text)
}

// TestPagesKeepTheirWordsInTheCatalogs: no page script holds a sentence for people, and no HTML
// page holds words outside an element whose data-i18n names their key (noscript aside: it
// speaks both languages, as no script can choose).
func TestPagesKeepTheirWordsInTheCatalogs(t *testing.T) {
	for _, f := range pageFiles(t, ".js") {
		strs, err := jsStrings(string(staticFile(t, f)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range strs {
			if forPeople(s) && !developerText[s.text] {
				t.Errorf("%s:%d: %q reads as words for people: put it in i18n/fr.js and en.js and use t()", f, s.line, s.text)
			}
		}
	}
	for _, f := range pageFiles(t, ".html") {
		eachElement(t, f, func(n *html.Node) {
			switch n.Data {
			case "noscript", "script", "style", "svg":
				return
			}
			for _, name := range []string{"alt", "title", "placeholder", "aria-label"} {
				if wordRe.MatchString(attr(n, name)) {
					t.Errorf("%s: <%s %s=%q>: set it from the page's script with t()", f, n.Data, name, attr(n, name))
				}
			}
			for c := range n.ChildNodes() {
				if c.Type == html.TextNode && strings.ContainsFunc(c.Data, unicode.IsLetter) {
					t.Errorf("%s: <%s> holds %q: put it in the catalogs, and its key in the element's data-i18n", f, n.Data, strings.TrimSpace(c.Data))
				}
			}
		})
	}
}

func TestForPeopleTellsSentencesFromCode(t *testing.T) {
	for _, s := range []jsString{{text: "Connexion…"}, {text: "Point en discussion : "}, {text: "the server refused"}, {text: "En direct"}} {
		if !forPeople(s) {
			t.Errorf("%q not taken for words", s.text)
		}
	}
	for _, s := range []jsString{{text: "button primary", before: "h('b', { class: "}, {text: "watch.status.live"}, {text: "/api/rooms/"}, {text: "M5 11a7 7 0 0 0 14 0"}, {text: "application/json"}, {text: " – "}, {text: "[data-key=\"x\"]"}} {
		if forPeople(s) {
			t.Errorf("%q taken for words", s.text)
		}
	}
}
