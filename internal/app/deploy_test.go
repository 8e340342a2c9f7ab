package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

// The alert rules and the dashboard under deploy/ query the server's metrics by name;
// a renamed or removed metric would leave an alert that can never fire and a blank panel.
const (
	alertRulesFile = "../../deploy/prometheus/alerts.yaml"
	dashboardFile  = "../../deploy/grafana/panther-scim.json"
)

// notFromTheServer are the series the queries may use that Prometheus itself makes rather
// than the server exports: up, for each scrape target.
var notFromTheServer = map[string]bool{"up": true}

// TestDeployQueriesUseExportedMetrics: every metric the alert rules and the dashboard
// query is one the server's registry exports (a histogram's _bucket, _sum and _count
// series included).
func TestDeployQueriesUseExportedMetrics(t *testing.T) {
	exported := exportedSeries(t)
	queries := alertQueries(t)
	queries = append(queries, dashboardQueries(t)...)
	if len(queries) < 20 {
		t.Fatalf("only %d queries found in the alert rules and the dashboard", len(queries))
	}
	for _, q := range queries {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s queries no metric: %s", q.where, q.expr)
		}
		for _, n := range names {
			if !exported[n] && !notFromTheServer[n] {
				t.Errorf("%s queries %s, which the server does not export", q.where, n)
			}
		}
	}
}

// exportedSeries is every series name the registry of NewMetrics can export. Names come
// from the collectors' descriptions, so a vector with no child yet counts; the series a
// histogram or summary adds to its name are counted for the families that Gather shows
// of those types once the histograms have an observation.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	m := NewMetrics()
	// An observation in each histogram vector, so that Gather reports their types.
	m.Call("inviteUser", "ok", time.Millisecond)
	m.instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))

	out := map[string]bool{}
	descs := make(chan *prometheus.Desc)
	go func() {
		m.reg.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		sub := fqName.FindStringSubmatch(d.String())
		if sub == nil {
			t.Fatalf("no name in %s", d)
		}
		out[sub[1]] = true
	}
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if !out[f.GetName()] {
			t.Errorf("%s is gathered but not described", f.GetName())
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[f.GetName()+"_bucket"], out[f.GetName()+"_sum"], out[f.GetName()+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[f.GetName()+"_sum"], out[f.GetName()+"_count"] = true, true
		}
	}
	for _, h := range []string{"panther_scim_http_request_duration_seconds_bucket", "panther_scim_panther_call_duration_seconds_bucket"} {
		if !out[h] {
			t.Fatalf("%s not found: the histograms were not observed", h)
		}
	}
	return out
}

type query struct{ where, expr string }

func alertQueries(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	var out []query
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, query{"alert " + r.Alert + r.Record, r.Expr})
		}
	}
	return out
}

// dashboardQueries are the panels' PromQL and the template variables' label_values
// queries, with Grafana's interval variables replaced by a duration PromQL accepts.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name, Type string
				Query      json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	var out []query
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, query{"panel " + p.Title, grafana.Replace(tg.Expr)})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		sub := labelValues.FindStringSubmatch(q.Query)
		if sub == nil {
			t.Fatalf("variable %s: not a label_values(metric, label) query: %s", v.Name, q.Query)
		}
		out = append(out, query{"variable " + v.Name, sub[1]})
	}
	return out
}

// metricNames parses a PromQL expression and returns the metric names its selectors use.
// A selector without a name (only {__name__=~...} or labels) is an error: it could match
// anything.
func metricNames(expr string) ([]string, error) {
	e, err := metricsql.Parse(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var unnamed []string
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		me, ok := x.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, lfs := range me.LabelFilterss {
			name := ""
			for _, lf := range lfs {
				if lf.Label == "__name__" && !lf.IsRegexp && !lf.IsNegative {
					name = lf.Value
				}
			}
			if name == "" {
				unnamed = append(unnamed, string(me.AppendString(nil)))
				continue
			}
			seen[name] = true
		}
	})
	if len(unnamed) > 0 {
		return nil, &unnamedError{unnamed}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

type unnamedError struct{ selectors []string }

func (e *unnamedError) Error() string {
	return "selectors without a metric name: " + strings.Join(e.selectors, ", ")
}

// TestMetricNames shows metricNames finds the names where PromQL hides them (inside
// functions, aggregations, binary operations, offsets, subqueries) and skips what is not a
// metric (label names, functions, keywords, numbers).
func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route!="x"}[5m])))`, []string{"a_bucket"}},
		{`b < c or b < 256 * 1024`, []string{"b", "c"}},
		{`sum by (job, instance) (increase(d[15m])) > 0 and on (job, instance) e > 0`, []string{"d", "e"}},
		{`min_over_time(f[15m:1m]) > 0 unless g offset 1h`, []string{"f", "g"}},
		{`up{job="x"} == 0 or absent(up{job="x"})`, []string{"up"}},
		{`{__name__="h", job="x"}`, []string{"h"}},
		{`vector(1) + time()`, nil},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: names %v, want %v", tc.expr, got, tc.want)
		}
	}
	if _, err := metricNames(`{job="x"}`); err == nil {
		t.Error("a selector without a name was accepted")
	}
}
