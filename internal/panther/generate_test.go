package panther

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Khan/genqlient/generate"
)

// generateFrom runs genqlient in-process on the genqlient.yaml in dir and returns the
// generated.go it would write.
func generateFrom(t *testing.T, dir string) []byte {
	t.Helper()
	cfg, err := generate.ReadAndValidateConfig(filepath.Join(dir, "genqlient.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := generate.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if filepath.Base(name) == "generated.go" {
			return content
		}
	}
	t.Fatalf("genqlient wrote no generated.go, only %d other files", len(files))
	return nil
}

// TestGeneratedCodeIsFresh fails when generated.go is not what genqlient makes of the
// checked-in schema.graphql, operations.graphql and genqlient.yaml.
func TestGeneratedCodeIsFresh(t *testing.T) {
	want := generateFrom(t, ".")
	got, err := os.ReadFile("generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("generated.go is stale: run `go generate ./internal/panther` and commit the result")
	}
}

// TestStalenessCheckSeesOperationChanges shows that the check above is not vacuous: the same
// inputs copied elsewhere generate the same file, and an edited operations.graphql does not.
func TestStalenessCheckSeesOperationChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator twice")
	}
	checkedIn, err := os.ReadFile("generated.go")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("operations.graphql")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(ops), "  status\n", "  status\n  lastLoggedInAt\n", 1)
	if edited == string(ops) {
		t.Fatal("could not edit the userFields fragment")
	}
	for _, tt := range []struct {
		name       string
		operations string
		wantSame   bool
	}{
		{"unchanged copy", string(ops), true},
		{"operations edited without regenerating", edited, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyFile(t, "genqlient.yaml", dir)
			copyFile(t, "schema.graphql", dir)
			writeFile(t, filepath.Join(dir, "operations.graphql"), tt.operations)
			// A one-file package "panther" in a module, so that genqlient resolves the package as here.
			writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/panther\n\ngo 1.26\n")
			writeFile(t, filepath.Join(dir, "doc.go"), "package panther\n")
			same := bytes.Equal(generateFrom(t, dir), checkedIn)
			if same != tt.wantSame {
				t.Errorf("generated output equals the checked-in file: %v, want %v", same, tt.wantSame)
			}
		})
	}
}

func copyFile(t *testing.T, name, dir string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name), string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
