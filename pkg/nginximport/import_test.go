package nginximport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// corpus lists the configurations under testdata: one directory each, its
// entry point nginx.conf.
func corpus(t testing.TB) []string {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func translateFile(t testing.TB, file string) *Result {
	t.Helper()
	ds, err := nginxconf.Parse(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Translate([][]*nginxconf.Directive{ds}, Options{Base: filepath.Dir(file)})
}

// TestCorpusGolden translates every configuration of the corpus and
// compares both outputs with the golden files beside it (stack.golden,
// routes.golden); -update rewrites them.
func TestCorpusGolden(t *testing.T) {
	files := corpus(t)
	if len(files) < 12 {
		t.Fatalf("the corpus has %d configurations, want at least 12", len(files))
	}
	for _, file := range files {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res := translateFile(t, file)
			var stack, routes bytes.Buffer
			WriteStack(&stack, res)
			WriteRoutesFile(&routes, res)
			for name, got := range map[string][]byte{"stack.golden": stack.Bytes(), "routes.golden": routes.Bytes()} {
				golden := filepath.Join(dir, name)
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs (run with -update to accept):\n--- got:\n%s--- want:\n%s", golden, got, want)
				}
			}
			if len(res.Services)+len(res.Static) == 0 {
				t.Errorf("no service translated")
			}
		})
	}
}
