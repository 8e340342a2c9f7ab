package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable that overrides a key.
const EnvPrefix = "PANTHER_SCIM_"

// Load reads the YAML file at path (none when path is ""), applies the environment
// overrides and validates the result. The returned Config is usable for reporting
// even when err is a validation error; serve must not start on any error.
func Load(path string) (Config, error) {
	c, err := Read(path)
	if err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("invalid config:\n%w", err)
	}
	return c, nil
}

// Read is Load without the validation, for a caller that changes the Config before
// validating it (demo replaces the secrets and listeners a file names with its own).
func Read(path string) (Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
	}
	c, err := Parse(data)
	if err != nil && path != "" {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return c, err
}

// Parse builds a Config from YAML without validating it, in this order: Default(),
// then the document (strictly: an unknown key, a value of the wrong type or a
// second document is an error), then the environment overrides (EnvVars), then
// $VAR / ${VAR} expansion in the fields that allow it (see the package comment).
// Empty data yields the defaults plus the overrides.
func Parse(data []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(&c); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return c, fmt.Errorf("parse config: %w", err)
	default:
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return c, errors.New("parse config: more than one YAML document")
		}
	}
	var errs []error
	walk(reflect.ValueOf(&c).Elem(), nil, func(f field) {
		raw, ok := os.LookupEnv(f.env)
		if !ok {
			return
		}
		if err := setFromEnv(f.v, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s (key %s): %w", f.env, f.key, err))
		}
	})
	walk(reflect.ValueOf(&c).Elem(), nil, func(f field) {
		if !f.expand {
			return
		}
		if err := expandField(f.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("config environment:\n%w", err)
	}
	return c, nil
}

// EnvVar is one environment override: the variable Name sets the config Key.
type EnvVar struct {
	Name string // e.g. PANTHER_SCIM_PANTHER_URL
	Key  string // e.g. panther.url
}

// EnvVars lists every environment override, in the order of the Config fields.
// The name is EnvPrefix followed by the key path in upper snake case
// (server.readHeaderTimeout -> PANTHER_SCIM_SERVER_READ_HEADER_TIMEOUT).
func EnvVars() []EnvVar {
	var out []EnvVar
	c := Default()
	walk(reflect.ValueOf(&c).Elem(), nil, func(f field) {
		out = append(out, EnvVar{Name: f.env, Key: f.key})
	})
	return out
}

// field is one leaf key of the Config.
type field struct {
	v      reflect.Value
	key    string // dotted YAML path
	env    string
	expand bool
}

var durationType = reflect.TypeOf(time.Duration(0))

// walk calls fn for each leaf of the struct v: a scalar, a duration, or a slice (a
// list is one key, replaced whole by its override).
func walk(v reflect.Value, path []string, fn func(field)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := append(path[:len(path):len(path)], name)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			walk(fv, p, fn)
			continue
		}
		env := make([]string, len(p))
		for j, s := range p {
			env[j] = upperSnake(s)
		}
		fn(field{
			v:      fv,
			key:    strings.Join(p, "."),
			env:    EnvPrefix + strings.Join(env, "_"),
			expand: sf.Tag.Get("expand") == "true",
		})
	}
}

// upperSnake turns a camelCase key into UPPER_SNAKE_CASE: readHeaderTimeout ->
// READ_HEADER_TIMEOUT, clientID -> CLIENT_ID, baseURL -> BASE_URL.
func upperSnake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}

// setFromEnv parses raw into the leaf v. Lists of strings are comma-separated
// (items trimmed, empty items dropped) or a YAML flow sequence when raw starts with
// "["; lists of rules are a YAML sequence such as
// [{group: Panther Admins, role: Admin}].
func setFromEnv(v reflect.Value, raw string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case v.Kind() == reflect.String:
		v.SetString(raw)
		return nil
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		v.SetInt(n)
		return nil
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		v.SetFloat(f)
		return nil
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		v.SetBool(b)
		return nil
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String && !strings.HasPrefix(strings.TrimSpace(raw), "["):
		var items []string
		for s := range strings.SplitSeq(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
		return nil
	case v.Kind() == reflect.Slice:
		p := reflect.New(v.Type())
		dec := yaml.NewDecoder(strings.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(p.Interface()); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("not a YAML list of the right shape: %w", err)
		}
		v.Set(p.Elem())
		return nil
	}
	return fmt.Errorf("unsupported type %s", v.Type())
}

// expandField replaces $VAR and ${VAR} in a string or string list from the
// environment. A variable that is not set is an error (an empty hash or URL would
// otherwise fail later with a less helpful message); $$ stands for a literal $.
func expandField(v reflect.Value) error {
	var errs []error
	expand := func(s string) string {
		return os.Expand(s, func(name string) string {
			if name == "$" {
				return "$"
			}
			val, ok := os.LookupEnv(name)
			if !ok {
				errs = append(errs, fmt.Errorf("environment variable %s is not set", name))
			}
			return val
		})
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(expand(v.String()))
	case reflect.Slice:
		for i := range v.Len() {
			e := v.Index(i)
			e.SetString(expand(e.String()))
		}
	}
	return errors.Join(errs...)
}
