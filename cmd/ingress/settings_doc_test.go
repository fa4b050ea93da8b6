package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// settingsDoc is the reference of every setting.
const settingsDoc = "../../docs/settings.md"

var settingName = regexp.MustCompile(`INGRESS_[A-Z0-9_]*[A-Z0-9]`)

// TestSettingsDocumented holds docs/settings.md and the code to each other:
// every INGRESS_* name the command reads (the settings table, and any name
// in a string of its non-test sources) has a row in the doc's table, with
// its default; and every INGRESS_* name the doc mentions is one the command
// reads.
func TestSettingsDocumented(t *testing.T) {
	doc, err := os.ReadFile(settingsDoc)
	if err != nil {
		t.Fatal(err)
	}
	literals, err := sourceSettingNames(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range settingsDocProblems(settings, literals, string(doc)) {
		t.Error(p)
	}
}

// TestSettingsDocProblems shows that the check above fails when the doc and
// the code disagree, one way or the other.
func TestSettingsDocProblems(t *testing.T) {
	code := []setting{{env: "INGRESS_A", def: ":80"}, {env: "INGRESS_B"}}
	const header = "| variable | meaning | default | read by |\n|---|---|---|---|\n"
	for _, tc := range []struct {
		name     string
		literals []string
		doc      string
		want     []string // substrings, one per problem, in order
	}{
		{"in step", []string{"INGRESS_A"},
			header + "| `INGRESS_A` | a | `:80` | serve |\n| `INGRESS_B` | b | none | edge |\n", nil},
		{"a setting without a row", nil,
			header + "| `INGRESS_A` | a | `:80` | serve |\n", []string{"INGRESS_B is read by cmd/ingress but has no row"}},
		{"a row the code does not read", nil,
			header + "| `INGRESS_A` | a | `:80` | serve |\n| `INGRESS_B` | b | none | edge |\n| `INGRESS_GONE` | c | none | edge |\n",
			[]string{"INGRESS_GONE is documented but cmd/ingress does not read it"}},
		{"a name only in the prose", nil,
			header + "| `INGRESS_A` | a | `:80` | serve |\n| `INGRESS_B` | b | none | edge |\n\nSee `INGRESS_OLD`.\n",
			[]string{"INGRESS_OLD is documented but cmd/ingress does not read it"}},
		{"a name used in the code but not in the table", []string{"INGRESS_C"},
			header + "| `INGRESS_A` | a | `:80` | serve |\n| `INGRESS_B` | b | none | edge |\n",
			[]string{"INGRESS_C appears in cmd/ingress but is not in its settings table"}},
		{"a wrong default", nil,
			header + "| `INGRESS_A` | a | `:8080` | serve |\n| `INGRESS_B` | b | none | edge |\n",
			[]string{"INGRESS_A: the row's default column does not show `:80`"}},
		{"a row twice", nil,
			header + "| `INGRESS_A` | a | `:80` | serve |\n| `INGRESS_B` | b | none | edge |\n| `INGRESS_A` | a | `:80` | serve |\n",
			[]string{"INGRESS_A has 2 rows"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := settingsDocProblems(code, tc.literals, tc.doc)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// settingsDocProblems compares the settings the code reads (the settings
// table, and the names found in its string literals) with the doc: its table
// rows ("| `INGRESS_X` | meaning | default | roles |") and every name it
// mentions elsewhere.
func settingsDocProblems(code []setting, literals []string, doc string) []string {
	var problems []string
	read := map[string]setting{}
	for _, s := range code {
		read[s.env] = s
	}
	for _, name := range literals {
		if _, ok := read[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s appears in cmd/ingress but is not in its settings table (config.go): add it there and to %s", name, settingsDoc))
		}
	}

	rows := map[string][]string{} // name -> its rows' cells
	count := map[string]int{}
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `INGRESS_") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		name := strings.Trim(cells[0], "`")
		rows[name] = cells
		count[name]++
	}
	for _, s := range code {
		cells, ok := rows[s.env]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is read by cmd/ingress but has no row in the table of %s", s.env, settingsDoc))
			continue
		case count[s.env] > 1:
			problems = append(problems, fmt.Sprintf("%s has %d rows in %s", s.env, count[s.env], settingsDoc))
		}
		if s.def != "" && (len(cells) < 3 || !strings.Contains(cells[2], "`"+s.def+"`")) {
			problems = append(problems, fmt.Sprintf("%s: the row's default column does not show `%s` (the default in config.go) in %s", s.env, s.def, settingsDoc))
		}
	}
	var stale []string
	for _, name := range settingName.FindAllString(doc, -1) {
		if _, ok := read[name]; !ok && !slices.Contains(stale, name) {
			stale = append(stale, name)
		}
	}
	for _, name := range stale {
		problems = append(problems, fmt.Sprintf("%s is documented but cmd/ingress does not read it: remove it from %s", name, settingsDoc))
	}
	return problems
}

// sourceSettingNames returns the INGRESS_* names in the string literals of
// the non-test Go files of dir (comments are not code: they are skipped).
func sourceSettingNames(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, name := range settingName.FindAllString(s, -1) {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
			return true
		})
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no INGRESS_* name in the string literals of %s: the scan is broken", dir)
	}
	return names, nil
}
