package durability

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// These tests keep docs/ true to the code: a route added, removed or given other roles
// without docs/api.md saying so fails here, and so does a walkthrough step calling a route
// that does not exist.

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(signalingtest.ModuleRoot(), "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serverRoutes is the server's route table.
func serverRoutes(t *testing.T) []httpapi.Route {
	t.Helper()
	return signalingtest.Start(t, signalingtest.NoMedia).Signaling.Routes()
}

// apiRoutes is the deliberation API as the route table declares it: "METHOD /api/rooms/..."
// → roles. Its routes are those served on the room's node, which they place there.
func apiRoutes(t *testing.T) map[string][]auth.Role {
	t.Helper()
	routes := map[string][]auth.Role{}
	for _, rt := range serverRoutes(t) {
		if rt.Relay == httpapi.ToRoom && strings.HasPrefix(rt.Pattern, "/api/rooms/") {
			routes[rt.Key()] = rt.Access.Roles
		}
	}
	if len(routes) == 0 {
		t.Fatal("the server lists no API route")
	}
	return routes
}

// TestProgrammeDocsSayWhoMayCallEachRoute checks the programme's table in docs/api.md against
// the route table: every programme route (those served where the room is open) has a row, and
// its "who" column is what the route table admits, word for word.
func TestProgrammeDocsSayWhoMayCallEachRoute(t *testing.T) {
	want := map[string]string{}
	for _, rt := range serverRoutes(t) {
		if rt.Relay == httpapi.ToOpenRoom {
			want[rt.Key()] = rt.Access.String()
		}
	}
	checkWhoTable(t, "## The public programme", want)
}

// TestPreparationDocsSayWhoMayCallEachRoute does the same for the routes that prepare sittings
// (with the room's list of its prepared sittings, read from the store on any node).
func TestPreparationDocsSayWhoMayCallEachRoute(t *testing.T) {
	want := map[string]string{}
	for _, rt := range serverRoutes(t) {
		if strings.HasPrefix(rt.Pattern, "/api/bodies/") || strings.HasPrefix(rt.Pattern, "/api/invitations/") || rt.Pattern == "/api/rooms/{room}/prepared" {
			want[rt.Key()] = rt.Access.String()
		}
	}
	for route := range checkWhoTable(t, "## Preparing sittings", want) {
		if _, ok := want[route]; !ok {
			t.Errorf("docs/api.md lists %s, which the server does not serve", route)
		}
	}
}

// checkWhoTable compares the "| route | who |" table of docs/api.md's section heading (up to the
// next section) with want, route by route, and returns the table.
func checkWhoTable(t *testing.T, heading string, want map[string]string) map[string]string {
	t.Helper()
	_, section, ok := strings.Cut(readDoc(t, "api.md"), heading+"\n")
	if !ok {
		t.Fatalf("docs/api.md has no section %q", heading)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	got := map[string]string{}
	for line := range strings.Lines(section) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		got[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	for route, who := range want {
		switch doc, ok := got[route]; {
		case !ok:
			t.Errorf("docs/api.md's table under %q has no row for %s (who: %s)", heading, route, who)
		case doc != who:
			t.Errorf("docs/api.md says %s is for %q; the route table says %q", route, doc, who)
		}
	}
	return got
}

func roleNames(roles []auth.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	slices.Sort(out)
	return out
}

// routeHeading is how docs/api.md titles a route: ### `POST /api/rooms/{room}/votes`
var routeHeading = regexp.MustCompile("^### `([A-Z]+ /api/rooms/[^`]+)`$")

// documentedRoutes reads each route section of docs/api.md and the roles its "Roles:" line
// names (nil when the section has none).
func documentedRoutes(t *testing.T, doc string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	current := ""
	for line := range strings.Lines(doc) {
		line = strings.TrimRight(line, "\n")
		if m := routeHeading.FindStringSubmatch(line); m != nil {
			if _, dup := out[m[1]]; dup {
				t.Errorf("docs/api.md documents %s twice", m[1])
			}
			current = m[1]
			out[current] = nil
			continue
		}
		if line == "## The public programme" {
			// The programme's routes are not the deliberation API's: their section gives who
			// may call each in its own table (several are anonymous), checked in signaling.
			break
		}
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			current = ""
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Roles: "); ok && current != "" && out[current] == nil {
			names := strings.Split(strings.TrimSuffix(strings.TrimSpace(rest), "."), ",")
			for i := range names {
				names[i] = strings.TrimSpace(names[i])
			}
			slices.Sort(names)
			out[current] = names
		}
	}
	return out
}

func TestAPIDocsNameEveryRouteWithItsRoles(t *testing.T) {
	routes := apiRoutes(t)
	documented := documentedRoutes(t, readDoc(t, "api.md"))
	for pattern, roles := range routes {
		got, ok := documented[pattern]
		switch {
		case !ok:
			t.Errorf("route %s is not documented in docs/api.md (add a section titled ### `%s`)", pattern, pattern)
		case got == nil:
			t.Errorf("docs/api.md: section %s has no \"Roles:\" line", pattern)
		case !slices.Equal(got, roleNames(roles)):
			t.Errorf("docs/api.md: %s is for %v, the server admits %v", pattern, got, roleNames(roles))
		}
	}
	for pattern := range documented {
		if _, ok := routes[pattern]; !ok {
			t.Errorf("docs/api.md documents %s, which the server does not serve", pattern)
		}
	}
}

// TestAPIDocsRoleTableMatchesTheServer checks the table of roles per route in docs/api.md.
func TestAPIDocsRoleTableMatchesTheServer(t *testing.T) {
	routes := apiRoutes(t)
	// Columns after the route: chair, clerk, member, captioner, then the three roles that only read.
	columns := [][]auth.Role{
		{auth.RoleChair}, {auth.RoleClerk}, {auth.RoleMember}, {auth.RoleCaptioner},
		{auth.RoleAgent, auth.RoleInterpreter, auth.RoleViewer},
	}
	seen := map[string]bool{}
	for line := range strings.Lines(readDoc(t, "api.md")) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != len(columns)+3 || !strings.Contains(cells[1], "/api/rooms/") {
			continue // not a row of that table
		}
		pattern := strings.Trim(strings.TrimSpace(cells[1]), "`")
		allowed, ok := routes[pattern]
		if !ok {
			t.Errorf("docs/api.md role table lists %s, which the server does not serve", pattern)
			continue
		}
		seen[pattern] = true
		for i, group := range columns {
			ticked := strings.TrimSpace(cells[2+i]) != ""
			for _, role := range group {
				if slices.Contains(allowed, role) != ticked {
					t.Errorf("docs/api.md role table: %s, column of %s is ticked=%v, the server admits %v",
						pattern, role, ticked, roleNames(allowed))
				}
			}
		}
	}
	for pattern := range routes {
		if !seen[pattern] {
			t.Errorf("docs/api.md role table has no row for %s", pattern)
		}
	}
}

// curlCall is one request of the walkthrough.
type curlCall struct {
	method, path, line string
}

// walkthroughCalls finds the curl commands of the shell blocks of docs/walkthrough.md.
func walkthroughCalls(t *testing.T, doc string) []curlCall {
	t.Helper()
	url := regexp.MustCompile(`\$HC(/api/rooms/\$ROOM[^"' ?]*)`)
	var calls []curlCall
	for _, block := range shellBlocks(doc) {
		// Join continued lines so that a command and its options are one line.
		for line := range strings.SplitSeq(strings.ReplaceAll(block, "\\\n", " "), "\n") {
			if !strings.Contains(line, "curl ") {
				continue
			}
			m := url.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			method := "GET"
			if strings.Contains(line, "-X POST") || strings.Contains(line, " -d ") {
				method = "POST"
			}
			calls = append(calls, curlCall{method: method, path: strings.ReplaceAll(m[1], "$ROOM", "demo"), line: line})
		}
	}
	return calls
}

// shellBlocks returns the text of every ```sh block, the commands a reader runs.
func shellBlocks(doc string) []string {
	var blocks []string
	for _, part := range strings.Split(doc, "```sh\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, body)
	}
	return blocks
}

func TestWalkthroughCallsRoutesThatExist(t *testing.T) {
	mux := http.NewServeMux()
	for pattern := range apiRoutes(t) {
		mux.Handle(pattern, http.NotFoundHandler())
	}
	calls := walkthroughCalls(t, readDoc(t, "walkthrough.md"))
	if len(calls) < 20 {
		t.Fatalf("found only %d curl calls in docs/walkthrough.md", len(calls))
	}
	used := map[string]bool{}
	for _, c := range calls {
		req := httptest.NewRequest(c.method, c.path, nil)
		_, pattern := mux.Handler(req)
		if pattern == "" {
			t.Errorf("docs/walkthrough.md: %s %s matches no route of the API:\n%s", c.method, c.path, c.line)
		}
		used[pattern] = true
	}
	// The walkthrough is a whole sitting: it must go from the opening to the minutes.
	for _, must := range []string{
		"POST /api/rooms/{room}/session", "POST /api/rooms/{room}/attendance/arrival",
		"POST /api/rooms/{room}/attendance/verify", "POST /api/rooms/{room}/proxies",
		"POST /api/rooms/{room}/items", "POST /api/rooms/{room}/items/{item}/open",
		"POST /api/rooms/{room}/votes", "POST /api/rooms/{room}/votes/{vote}/ballots",
		"POST /api/rooms/{room}/votes/{vote}/close", "POST /api/rooms/{room}/session/close",
		"GET /api/rooms/{room}/minutes",
	} {
		if !used[must] {
			t.Errorf("docs/walkthrough.md never calls %s", must)
		}
	}
}

func TestExampleRosterParses(t *testing.T) {
	f, err := os.Open(filepath.Join(signalingtest.ModuleRoot(), "docs", "example-roster.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := council.ParseRoster(f)
	if err != nil {
		t.Fatalf("docs/example-roster.csv: %v", err)
	}
	if n := r.InOffice(); n != 7 {
		t.Errorf("docs/example-roster.csv has %d members in office; the walkthrough's quorum figures assume 7", n)
	}
	// The walkthrough shows the file: it must show it as it is.
	raw, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readDoc(t, "walkthrough.md"), "```text\n"+string(raw)+"```") {
		t.Error("docs/walkthrough.md does not show docs/example-roster.csv as it is")
	}
}
