package pantherfake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteJSONStringRoundTrips(t *testing.T) {
	for _, s := range awkwardStrings {
		w := newJSONOut()
		w.b = append(w.b, '{')
		w.b = appendJSONString(w.b, s)
		w.b = append(w.b, ':')
		w.value([]any{s, true, nil, int64(3)})
		w.b = append(w.b, '}')
		b := bytes.Clone(w.b)
		w.release()
		var got map[string][]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, b, err)
		}
		want := string([]rune(s)) // each invalid byte is U+FFFD
		if v, ok := got[want]; !ok || v[0] != want || v[1] != true || v[2] != nil || v[3] != float64(3) {
			t.Errorf("%q: round trip gave %v", s, got)
		}
		if strings.ContainsAny(string(b), "<>&\u2028") {
			t.Errorf("%q: unescaped HTML or separator in %s", s, b)
		}
		// The same bytes as the writer the executor had before it wrote JSON itself.
		var ref bytes.Buffer
		bw := bufio.NewWriter(&ref)
		refWriteJSONString(bw, s)
		bw.Flush()
		if got := appendJSONString(nil, s); !bytes.Equal(got, ref.Bytes()) {
			t.Errorf("%q: wrote %s, the reference %s", s, got, ref.Bytes())
		}
	}
}
