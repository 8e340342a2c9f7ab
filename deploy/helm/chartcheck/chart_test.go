// Package chartcheck validates the panther-scim Helm chart in CI without a cluster: Helm's
// own linter, rendering with Helm's engine (default values, every optional part on, and the
// README's Okta and Entra examples), and strict decoding of every rendered object into the
// Kubernetes API types, so that an unknown or mistyped field fails as the API server would
// refuse it. It is a module of its own so that Helm and the Kubernetes libraries stay out of
// the server's go.mod.
//
// With CHARTCHECK_OUT set, each case's rendered config.yaml and the secret variables its pod
// gets are written under that folder; deploy/check.sh then runs `panther-scim check --offline`
// on them, so the chart's config is checked against the server's own strict parser.
package chartcheck

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	chartDir  = "../panther-scim"
	namespace = "identity"
	release   = "panther-scim"
)

// chartCase is one set of values the chart must render.
type chartCase struct {
	name   string
	values string // values file; "" for the chart's defaults
	// kinds is every kind the case renders, with its count.
	kinds map[string]int
}

var cases = []chartCase{
	{"defaults", "", map[string]int{
		"ConfigMap": 1, "NetworkPolicy": 1, "PodDisruptionBudget": 1, "Service": 2, "ServiceAccount": 1,
		"StatefulSet": 1, "Pod": 1,
	}},
	{"all-on", "testdata/all-on.yaml", map[string]int{
		"ConfigMap": 1, "Ingress": 1, "NetworkPolicy": 1, "PodDisruptionBudget": 1, "Service": 2,
		"ServiceAccount": 1, "ServiceMonitor": 1, "StatefulSet": 1, "Pod": 1,
	}},
	{"okta example", "../examples/okta-values.yaml", map[string]int{
		"ConfigMap": 1, "Ingress": 1, "NetworkPolicy": 1, "PodDisruptionBudget": 1, "Service": 2,
		"ServiceAccount": 1, "ServiceMonitor": 1, "StatefulSet": 1, "Pod": 1,
	}},
	{"entra example", "../examples/entra-values.yaml", map[string]int{
		"ConfigMap": 1, "Ingress": 1, "NetworkPolicy": 1, "PodDisruptionBudget": 1, "Service": 2,
		"ServiceAccount": 1, "StatefulSet": 1, "Pod": 1,
	}},
}

func TestChart(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := readValues(t, c.values)
			lintChart(t, vals)
			objs := decodeAll(t, render(t, vals))
			counts := map[string]int{}
			for _, o := range objs {
				counts[o.kind]++
			}
			if !maps.Equal(counts, c.kinds) {
				t.Errorf("rendered kinds %v, want %v", counts, c.kinds)
			}
			checkInvariants(t, objs, vals)
			if out := os.Getenv("CHARTCHECK_OUT"); out != "" {
				writeConfigCheck(t, filepath.Join(out, strings.ReplaceAll(c.name, " ", "-")), objs)
			}
		})
	}
}

// TestRefusedValues: values that would break the one-writer rule, or that the chart sets
// itself, fail at render time with a message, not at run time.
func TestRefusedValues(t *testing.T) {
	for _, tc := range []struct {
		name, values, want string
	}{
		{"replicaCount", "replicaCount: 2", "replicaCount"},
		{"replicas", "replicas: 2", "replicas"},
		{"a second writer through the budget", "podDisruptionBudget: {maxUnavailable: 2}", "maxUnavailable"},
		{"server.addr", "config: {server: {addr: 0.0.0.0:80}}", "config.server.addr is set by the chart"},
		{"store.path", "config: {store: {path: /tmp/x.db}}", "config.store.path is set by the chart"},
		{"no Panther token", "secrets: {keys: {pantherApiToken: \"\"}}", "pantherApiToken"},
		{"a secret in a typo'd key", "secrets: {keys: {pantherToken: abc}}", "pantherToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := chartcommon.ReadValues([]byte(tc.values))
			if err != nil {
				t.Fatal(err)
			}
			_, err = renderErr(vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestStrictDecodingCatchesMistakes shows the decoder refuses what the API server would:
// an unknown field, a field of the wrong type, a kind it does not know.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targetPorts: 80}]}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: \"one\"}\n",
		"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		"unknown kind":   "apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n",
		"unknown field2": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{port: ops, intervall: 30s}]}\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decode([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n")); err != nil {
		t.Errorf("a valid Service: %v", err)
	}
}

// ---- Helm -----------------------------------------------------------------------------

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartcommon.ReadValuesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lintChart runs `helm lint --strict`: a warning fails as an error does.
func lintChart(t *testing.T, vals map[string]any) {
	t.Helper()
	res := lint.RunAll(chartDir, vals, namespace)
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m.Error())
		}
	}
}

func render(t *testing.T, vals map[string]any) map[string]string {
	t.Helper()
	out, err := renderErr(vals)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renderErr renders the chart as `helm template` does for an install, the values checked
// against values.schema.json.
func renderErr(vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals,
		chartcommon.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, nil, false)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, top)
}

// ---- strict decoding ---------------------------------------------------------------------

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict refuses unknown and duplicate fields; a value of the wrong type fails any decoding.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

type object struct {
	file string
	kind string
	obj  runtime.Object
}

func decode(doc []byte) (runtime.Object, error) {
	obj, gvk, err := strict.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	if obj.GetObjectKind().GroupVersionKind() == (schema.GroupVersionKind{}) && gvk != nil {
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
	}
	return obj, nil
}

// decodeAll splits every rendered template into its YAML documents and decodes each one.
func decodeAll(t *testing.T, rendered map[string]string) []object {
	t.Helper()
	files := make([]string, 0, len(rendered))
	for f := range rendered {
		files = append(files, f)
	}
	sort.Strings(files)
	var objs []object
	for _, f := range files {
		if strings.HasSuffix(f, "NOTES.txt") {
			continue
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(rendered[f])))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, err := decode(doc)
			if err != nil {
				t.Errorf("%s: %v\n%s", f, err, doc)
				continue
			}
			objs = append(objs, object{file: f, kind: obj.GetObjectKind().GroupVersionKind().Kind, obj: obj})
		}
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// ---- what the chart promises -----------------------------------------------------------

// secretVariables are the variables that carry secrets into the pods; each must come from
// the named Secret.
var secretVariables = []string{
	"PANTHER_API_TOKEN", "PANTHER_SCIM_BEARER_TOKENS", "PANTHER_SCIM_AUTH_BEARER_TOKEN_HASHES",
	"PANTHER_SCIM_AUTH_OAUTH_CLIENT_SECRET_HASH", "PANTHER_SCIM_OAUTH_SIGNING_KEY", "PANTHER_SCIM_ADMIN_TOKENS",
	"PANTHER_SCIM_AUDIT_SECRET", "PANTHER_SCIM_AUTH_ADMIN_TOKEN_HASHES",
}

func checkInvariants(t *testing.T, objs []object, vals map[string]any) {
	t.Helper()
	secretName := "panther-scim"
	if s, ok := vals["secrets"].(map[string]any); ok && s["name"] != nil {
		secretName = s["name"].(string)
	}
	var sts *appsv1.StatefulSet
	var testPod *corev1.Pod
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *appsv1.StatefulSet:
			sts = x
		case *corev1.Pod:
			testPod = x
		case *corev1.Secret:
			t.Errorf("%s renders a Secret: secrets must come from the user's own Secret", o.file)
		case *corev1.ConfigMap:
			for k, v := range x.Data {
				for _, name := range secretVariables {
					if strings.Contains(v, name+"=") {
						t.Errorf("ConfigMap key %s sets %s", k, name)
					}
				}
			}
		}
	}
	if sts == nil || testPod == nil {
		t.Fatal("no StatefulSet or no Helm test pod")
	}

	// One writer: one pod, replaced only after the old one is gone.
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Errorf("StatefulSet replicas %v, want 1", sts.Spec.Replicas)
	}
	if sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType || sts.Spec.UpdateStrategy.RollingUpdate != nil {
		t.Errorf("update strategy %+v, want a plain RollingUpdate", sts.Spec.UpdateStrategy)
	}
	if sts.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
		t.Errorf("pod management %q, want OrderedReady", sts.Spec.PodManagementPolicy)
	}
	pod := sts.Spec.Template.Spec
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("service links on: Kubernetes would set PANTHER_SCIM_* variables the server reads as config")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/panther-scim/config.yaml"}) {
		t.Errorf("args %v", c.Args)
	}
	var data bool
	for _, m := range c.VolumeMounts {
		data = data || (m.Name == "data" && m.MountPath == "/data")
	}
	if !data {
		t.Error("the data volume is not mounted at /data")
	}
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		var claim bool
		for _, v := range pod.Volumes {
			claim = claim || (v.Name == "data" && v.PersistentVolumeClaim != nil)
		}
		if !claim {
			t.Error("no volume claim template and no existing claim for the data volume")
		}
	}

	// Probes on the ops listener.
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "ops" {
			t.Errorf("%s probe %+v, want GET %s on the ops port", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")

	// Non-root, read-only root filesystem, a memory limit.
	for _, sc := range []struct {
		who string
		pod *corev1.PodSecurityContext
		c   *corev1.SecurityContext
	}{{"server", pod.SecurityContext, c.SecurityContext}, {"helm test", testPod.Spec.SecurityContext, testPod.Spec.Containers[0].SecurityContext}} {
		if sc.pod == nil || sc.pod.RunAsNonRoot == nil || !*sc.pod.RunAsNonRoot || sc.pod.RunAsUser == nil || *sc.pod.RunAsUser == 0 {
			t.Errorf("%s: pod security context %+v does not run as non-root", sc.who, sc.pod)
		}
		if sc.c == nil || sc.c.ReadOnlyRootFilesystem == nil || !*sc.c.ReadOnlyRootFilesystem ||
			sc.c.AllowPrivilegeEscalation == nil || *sc.c.AllowPrivilegeEscalation {
			t.Errorf("%s: container security context %+v", sc.who, sc.c)
		}
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resources %+v: no memory request or limit", c.Resources)
	}

	// Secrets only from the user's Secret, into the server and the test alike.
	for who, env := range map[string][]corev1.EnvVar{"server": c.Env, "helm test": testPod.Spec.Containers[0].Env} {
		var names []string
		for _, e := range env {
			names = append(names, e.Name)
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secretName {
				t.Errorf("%s: variable %s does not come from the Secret %s", who, e.Name, secretName)
			}
		}
		if !slices.Contains(names, "PANTHER_API_TOKEN") {
			t.Errorf("%s: no Panther API token among %v", who, names)
		}
	}
	if !slices.Equal(testPod.Spec.Containers[0].Args, []string{"check", "--config", "/etc/panther-scim/config.yaml"}) ||
		testPod.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("Helm test pod runs %v with hook %q", testPod.Spec.Containers[0].Args, testPod.Annotations["helm.sh/hook"])
	}
	routed := true
	for k, v := range sts.Spec.Selector.MatchLabels {
		routed = routed && testPod.Labels[k] == v
	}
	if routed {
		t.Error("the Helm test pod carries every selector label of the server: the Services would route to it")
	}
}

// writeConfigCheck writes the case's config.yaml and the secret variables of its pod, with
// placeholder values of the right form, for `panther-scim check --offline`.
func writeConfigCheck(t *testing.T, dir string, objs []object) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *corev1.ConfigMap:
			cfg := x.Data["config.yaml"]
			// The chart's defaults leave empty the two values every install must set.
			if strings.Contains(cfg, "panther:\n  url: \"\"\n") {
				env = append(env, "PANTHER_SCIM_PANTHER_URL=https://api.example.invalid/public/graphql")
			}
			if strings.Contains(cfg, "  baseURL: \"\"\n") {
				env = append(env, "PANTHER_SCIM_SERVER_BASE_URL=https://scim.example.invalid")
			}
			if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
		case *appsv1.StatefulSet:
			for _, e := range x.Spec.Template.Spec.Containers[0].Env {
				env = append(env, e.Name+"="+placeholder(e.Name))
			}
			for _, v := range x.Spec.Template.Spec.Volumes {
				if v.Name == "tls" {
					// The server checks only that the files can be read.
					env = append(env, "PANTHER_SCIM_SERVER_TLS_CERT_FILE=/dev/null", "PANTHER_SCIM_SERVER_TLS_KEY_FILE=/dev/null")
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(strings.Join(env, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func placeholder(name string) string {
	if strings.HasSuffix(name, "_HASH") || strings.HasSuffix(name, "_HASHES") {
		// A hash of its own for each variable: the server refuses one token in two roles.
		sum := sha256.Sum256([]byte(name))
		return hex.EncodeToString(sum[:])
	}
	return fmt.Sprintf("ci-placeholder-%s-0123456789abcdef0123456789", strings.ToLower(name))
}

// TestREADMEExamples: the values shown in the repository README's "Install on Kubernetes"
// are the example files this test renders, so the README cannot drift from what CI checks.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"okta-values.yaml", "entra-values.yaml"} {
		want, err := os.ReadFile("../examples/" + file)
		if err != nil {
			t.Fatal(err)
		}
		marker := "```yaml\n# deploy/helm/examples/" + file + "\n"
		_, block, ok := strings.Cut(string(readme), marker)
		if !ok {
			t.Errorf("README shows no block starting %q", marker)
			continue
		}
		block, _, _ = strings.Cut(block, "```")
		if block != string(want) {
			t.Errorf("README's %s differs from deploy/helm/examples/%s", file, file)
		}
	}
}

// TestBaseURLFromIngress: server.baseURL, which the server requires, defaults to the
// Ingress's host; a baseURL in config wins.
func TestBaseURLFromIngress(t *testing.T) {
	for values, want := range map[string]string{
		"ingress: {enabled: true, host: scim.acme.com}":                                                    "baseURL: https://scim.acme.com\n",
		"ingress: {enabled: true, host: scim.acme.com}\nconfig: {server: {baseURL: https://idp.acme.com}}": "baseURL: https://idp.acme.com\n",
	} {
		vals, err := chartcommon.ReadValues([]byte(values))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range decodeAll(t, render(t, vals)) {
			if cm, ok := o.obj.(*corev1.ConfigMap); ok && !strings.Contains(cm.Data["config.yaml"], want) {
				t.Errorf("%s: config.yaml lacks %q:\n%s", values, want, cm.Data["config.yaml"])
			}
		}
	}
}

// TestImageAgrees: the image's environment overrides the config file (PANTHER_SCIM_<KEY>
// wins over config.yaml), and its user is the chart's: they must say what the chart says.
func TestImageAgrees(t *testing.T) {
	dockerfile, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var cfg string
	var sts *appsv1.StatefulSet
	for _, o := range decodeAll(t, render(t, map[string]any{})) {
		switch x := o.obj.(type) {
		case *corev1.ConfigMap:
			cfg = x.Data["config.yaml"]
		case *appsv1.StatefulSet:
			sts = x
		}
	}
	for env, want := range map[string]string{
		"PANTHER_SCIM_STORE_PATH":  "path: /data/panther-scim.db\n",
		"PANTHER_SCIM_SERVER_ADDR": "addr: 0.0.0.0:8080\n",
	} {
		m := regexp.MustCompile(env + `=(\S+)`).FindSubmatch(dockerfile)
		if m == nil {
			continue // the image no longer sets it: nothing to agree with
		}
		_, value, _ := strings.Cut(strings.TrimSpace(want), ": ")
		if string(m[1]) != value || !strings.Contains(cfg, want) {
			t.Errorf("the image sets %s=%s, the chart's config has %q", env, m[1], want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER (\d+):(\d+)`).FindSubmatch(dockerfile)
	sc := sts.Spec.Template.Spec.SecurityContext
	if user == nil || fmt.Sprint(*sc.RunAsUser) != string(user[1]) || fmt.Sprint(*sc.RunAsGroup) != string(user[2]) {
		t.Errorf("the image's USER %s, the chart runs as %d:%d", user, *sc.RunAsUser, *sc.RunAsGroup)
	}
}
