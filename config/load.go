package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error names the key (or environment variable) of a bad value.
type Error struct {
	Key  string // e.g. "oidc.issuer", or "BFF_OIDC_ISSUER"
	Line int    // line in the file, 0 when not from the file
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: %s (line %d): %v", e.Key, e.Line, e.Err)
	}
	return fmt.Sprintf("config: %s: %v", e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads the YAML file at path (none when path is ""), then applies the
// BFF_* variables of environ (as os.Environ returns them).
func Load(path string, environ []string) (*File, error) {
	var f File
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := Parse(data, &f); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(&f, environ); err != nil {
		return nil, err
	}
	return &f, nil
}

// Parse decodes YAML into f. Every key must be one File knows.
func Parse(data []byte, f *File) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file
		}
		return fmt.Errorf("config: not valid YAML: %w", err)
	}
	node := &doc
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	return decode(node, reflect.ValueOf(f).Elem(), "")
}

var durationType = reflect.TypeOf(Duration(0))

// decode walks node and v together: a hand-written walk instead of
// yaml.v3's own decoding, so that every error (unknown key, wrong type, bad
// value) names the full key path, not a Go type.
func decode(node *yaml.Node, v reflect.Value, path string) error {
	for node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil
	}
	fail := func(format string, args ...any) error {
		return &Error{Key: keyName(path), Line: node.Line, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case v.Kind() == reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return fail("must be a mapping")
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			key := join(path, k.Value)
			if seen[k.Value] {
				return &Error{Key: key, Line: k.Line, Err: errors.New("appears twice")}
			}
			seen[k.Value] = true
			field, ok := fieldByTag(v, k.Value)
			if !ok {
				return &Error{Key: key, Line: k.Line, Err: fmt.Errorf("unknown key%s", suggest(v.Type(), k.Value))}
			}
			if err := decode(val, field, key); err != nil {
				return err
			}
		}
		return nil
	case v.Kind() == reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return fail("must be a list")
		}
		s := reflect.MakeSlice(v.Type(), len(node.Content), len(node.Content))
		for i, item := range node.Content {
			if err := decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	default:
		if node.Kind != yaml.ScalarNode {
			return fail("must be a single value")
		}
		if err := setScalar(v, node.Value); err != nil {
			return fail("%v", err)
		}
		return nil
	}
}

// setScalar parses s into the leaf v.
func setScalar(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(int64(n))
	default:
		return fmt.Errorf("cannot set a %s", v.Type())
	}
	return nil
}

func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func tag(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// suggest names the known key closest to got (at most two edits away), or
// else all known keys, to help with a typo.
func suggest(t reflect.Type, got string) string {
	var names []string
	best, bestDist := "", 3
	for i := 0; i < t.NumField(); i++ {
		name := tag(t.Field(i))
		names = append(names, name)
		if d := editDistance(strings.ToLower(strings.ReplaceAll(got, "-", "_")), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyName(path string) string {
	if path == "" {
		return "(file)"
	}
	return path
}

// applyEnv sets every field whose BFF_ variable is in environ.
func applyEnv(f *File, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "BFF_") {
			env[k] = v
		}
	}
	used := map[string]bool{}
	if err := envWalk(reflect.ValueOf(f).Elem(), "BFF", env, used); err != nil {
		return err
	}
	var unknown []string
	for k := range env {
		if !used[k] && k != "BFF_CONFIG" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return &Error{Key: unknown[0], Err: fmt.Errorf("unknown environment variable (unknown: %s)", strings.Join(unknown, ", "))}
	}
	return nil
}

func envWalk(v reflect.Value, prefix string, env map[string]string, used map[string]bool) error {
	switch {
	case v.Kind() == reflect.Struct && v.Type() != durationType:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := prefix + "_" + strings.ToUpper(tag(t.Field(i)))
			if err := envWalk(v.Field(i), name, env, used); err != nil {
				return err
			}
		}
		return nil
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		// BFF_APIS_0_PATH: grow the list to the highest index named.
		n := v.Len()
		for k := range env {
			rest, ok := strings.CutPrefix(k, prefix+"_")
			if !ok {
				continue
			}
			idx, _, _ := strings.Cut(rest, "_")
			if i, err := strconv.Atoi(idx); err == nil && i >= n && i < 1000 {
				n = i + 1
			}
		}
		if n > v.Len() {
			grown := reflect.MakeSlice(v.Type(), n, n)
			reflect.Copy(grown, v)
			v.Set(grown)
		}
		for i := 0; i < v.Len(); i++ {
			if err := envWalk(v.Index(i), fmt.Sprintf("%s_%d", prefix, i), env, used); err != nil {
				return err
			}
		}
		return nil
	}
	s, ok := env[prefix]
	if !ok {
		return nil
	}
	used[prefix] = true
	if v.Kind() == reflect.Slice {
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
		return nil
	}
	if err := setScalar(v, s); err != nil {
		return &Error{Key: prefix, Err: err}
	}
	return nil
}
