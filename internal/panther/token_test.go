package panther

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  file-token-123\n")
	empty := write("empty", "\n")
	twoLines := write("two", "secret-one\nsecret-two\n")
	t.Setenv("PT_TEST_SET", " env-token-456 ")
	t.Setenv("PT_TEST_EMPTY", "")
	t.Setenv(DefaultTokenEnv, "default-env-token")

	tests := []struct {
		name, env, file, want string
		wantErr               bool
	}{
		{"file", "PT_TEST_SET", good, "file-token-123", false},
		{"env", "PT_TEST_SET", "", "env-token-456", false},
		{"default env", "", "", "default-env-token", false},
		{"empty env", "PT_TEST_EMPTY", "", "", true},
		{"missing file", "", filepath.Join(dir, "nope"), "", true},
		{"empty file", "", empty, "", true},
		{"two lines", "", twoLines, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadToken(tt.env, tt.file)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("LoadToken = %q, %v", got, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the file's contents: %v", err)
			}
		})
	}
}
