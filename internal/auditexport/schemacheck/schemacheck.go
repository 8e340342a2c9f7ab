// Package schemacheck reads the Panther custom log schema shipped in deploy/panther and
// checks JSON events against it: every field declared, of the declared type, the
// required ones present. Tests use it to keep the events panther-scim sends and the
// schema Panther parses them with from drifting apart.
package schemacheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"gopkg.in/yaml.v3"
)

// Field is a Panther custom log schema FieldSchema (the parts checked here).
type Field struct {
	Name        string   `yaml:"name"`
	Type        string   `yaml:"type"`
	Required    bool     `yaml:"required"`
	Description string   `yaml:"description"`
	Fields      []Field  `yaml:"fields"`
	Element     *Field   `yaml:"element"`
	TimeFormats []string `yaml:"timeFormats"`
	IsEventTime bool     `yaml:"isEventTime"`
	Indicators  []string `yaml:"indicators"`
}

// Schema is a Panther custom log schema file.
type Schema struct {
	Schema       string  `yaml:"schema"`
	Description  string  `yaml:"description"`
	ReferenceURL string  `yaml:"referenceURL"`
	Version      int     `yaml:"version"`
	Fields       []Field `yaml:"fields"`
}

// Dir is the repository's deploy/panther directory, found from this source file.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "panther")
}

// AuditSchemaPath is the file of the Custom.PantherSCIM.Audit schema.
func AuditSchemaPath() string { return filepath.Join(Dir(), "schemas", "pantherscim_audit.yml") }

// Load reads a schema file strictly: an unknown key is an error, as in Panther.
func Load(path string) (Schema, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Schema{}, err
	}
	var s Schema
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Schema{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Lookup returns the field named name among fields.
func Lookup(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Check returns the problems of one JSON event (an object) against the schema.
func (s Schema) Check(event []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	return check("", v, s.Fields)
}

func check(path string, v map[string]any, fs []Field) []string {
	var out []string
	for _, f := range fs {
		if _, ok := v[f.Name]; f.Required && !ok {
			out = append(out, path+f.Name+": required, missing")
		}
	}
	for k, val := range v {
		f, ok := Lookup(fs, k)
		if !ok {
			out = append(out, path+k+": not declared in the schema")
			continue
		}
		out = append(out, checkValue(path+k, val, f)...)
	}
	return out
}

func checkValue(path string, val any, f Field) []string {
	bad := []string{fmt.Sprintf("%s: %v (%T) is not a %s", path, val, val, f.Type)}
	switch f.Type {
	case "string":
		if _, ok := val.(string); !ok {
			return bad
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			return bad
		}
	case "bigint":
		n, ok := val.(json.Number)
		if !ok {
			return bad
		}
		if _, err := n.Int64(); err != nil {
			return bad
		}
	case "timestamp":
		s, ok := val.(string)
		if !ok {
			return bad
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return bad
		}
	case "object":
		m, ok := val.(map[string]any)
		if !ok {
			return bad
		}
		return check(path+".", m, f.Fields)
	case "json":
	default:
		return []string{fmt.Sprintf("%s: schema type %q is not checked here", path, f.Type)}
	}
	return nil
}
