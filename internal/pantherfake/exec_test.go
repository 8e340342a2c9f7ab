package pantherfake

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteJSONStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quo"te`, `back\slash`, "new\nline\ttab\rcr", "\x00\x01\x1f\b\f", "<a&b>",
		"line\u2028sep\u2029", "émoji 🎉", "bad\xffutf8", strings.Repeat("x", 5000),
	} {
		b, err := orderedObject{{key: s, val: []any{s, true, nil, int64(3)}}}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var got map[string][]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if v, ok := got[want]; !ok || v[0] != want || v[1] != true || v[2] != nil || v[3] != float64(3) {
			t.Errorf("%q: round trip gave %v", s, got)
		}
		if strings.ContainsAny(string(b), "<>&\u2028") {
			t.Errorf("%q: unescaped HTML or separator in %s", s, b)
		}
	}
}
