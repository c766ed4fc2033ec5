package deploy

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

type rendered struct {
	configMap      *corev1.ConfigMap
	daemonSet      *appsv1.DaemonSet
	service        *corev1.Service
	serviceMonitor *monitoringv1.ServiceMonitor
}

func renderAndDecode(t *testing.T, overrides string) rendered {
	t.Helper()
	stream, err := renderChart(chartDir, overrides)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objects, err := decodeAll("rendered chart", stream)
	if err != nil {
		t.Fatal(err)
	}
	var r rendered
	for _, obj := range objects {
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			r.configMap = o
		case *appsv1.DaemonSet:
			r.daemonSet = o
		case *corev1.Service:
			r.service = o
		case *monitoringv1.ServiceMonitor:
			r.serviceMonitor = o
		default:
			t.Fatalf("unexpected object %T", obj)
		}
	}
	if r.configMap == nil || r.daemonSet == nil {
		t.Fatalf("want a ConfigMap and a DaemonSet, got %d objects", len(objects))
	}
	return r
}

func container(t *testing.T, containers []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func daemonConfig(t *testing.T, r rendered) map[string]any {
	t.Helper()
	config := map[string]any{}
	if _, err := toml.Decode(r.configMap.Data["config.toml"], &config); err != nil {
		t.Fatalf("config.toml: %v\n%s", err, r.configMap.Data["config.toml"])
	}
	return config
}

func TestChartDefaults(t *testing.T) {
	r := renderAndDecode(t, "")
	if r.service != nil || r.serviceMonitor != nil {
		t.Error("the ServiceMonitor and its Service are off by default")
	}
	pod := r.daemonSet.Spec.Template.Spec
	daemon := container(t, pod.Containers, "daemon")
	sc := daemon.SecurityContext
	if sc == nil || sc.Privileged != nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 ||
		sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile == nil || sc.AppArmorProfile == nil {
		t.Errorf("the default (minimal) profile drops ALL, adds capabilities and sets the profiles: %+v", sc)
	}
	if pod.InitContainers[0].Name != "doctor" {
		t.Errorf("the doctor init container is on by default")
	}
	if r.daemonSet.Spec.Template.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("prometheus.io annotations are on by default")
	}
	config := daemonConfig(t, r)
	// Helm reads YAML numbers as floats; the daemon refuses a float for an integer key.
	for _, key := range []string{"workers", "metrics_port", "default_memory_limit", "max_memory_limit"} {
		if _, isInt := config[key].(int64); !isInt {
			t.Errorf("config.toml: %s = %#v is not a TOML integer", key, config[key])
		}
	}
}

func TestChartNonDefaultValues(t *testing.T) {
	r := renderAndDecode(t, valuesYAML(map[string]any{
		"securityProfile": "privileged",
		"doctor":          map[string]any{"enabled": false},
		"socket":          map[string]any{"hostDir": "/var/run/leeward-k8s", "name": "daemon.sock"},
		"config":          map[string]any{"workers": 8, "shutdown_grace_secs": 42.5, "preload": []string{"numpy"}, "pids_max": nil},
		"env":             map[string]any{"LEEWARD_WORKERS": 6},
		"metrics": map[string]any{"port": 9191, "podAnnotations": false,
			"serviceMonitor": map[string]any{"enabled": true, "interval": "15s", "labels": map[string]any{"release": "prom"}}},
		"nodeSelector":      map[string]any{"leeward.dev/sandbox": "true"},
		"tolerations":       []any{map[string]any{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}},
		"priorityClassName": "system-node-critical",
		"resources":         map[string]any{"limits": map[string]any{"memory": "16Gi", "cpu": "4"}},
	}))
	pod := r.daemonSet.Spec.Template.Spec
	daemon := container(t, pod.Containers, "daemon")
	if sc := daemon.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged || sc.Capabilities != nil {
		t.Errorf("privileged profile: %+v", sc)
	}
	if len(pod.InitContainers) != 0 {
		t.Errorf("doctor.enabled=false still renders %d init containers", len(pod.InitContainers))
	}
	if got := *pod.TerminationGracePeriodSeconds; got != int64(math.Ceil(42.5))+20 {
		t.Errorf("terminationGracePeriodSeconds = %d, want ceil(shutdown_grace_secs) + terminationMarginSecs = 63", got)
	}
	if pod.NodeSelector["leeward.dev/sandbox"] != "true" || len(pod.Tolerations) != 1 ||
		pod.Tolerations[0].Effect != corev1.TaintEffectNoSchedule || pod.PriorityClassName != "system-node-critical" {
		t.Errorf("scheduling values not applied: %v %v %q", pod.NodeSelector, pod.Tolerations, pod.PriorityClassName)
	}
	if daemon.Resources.Limits.Memory().String() != "16Gi" || daemon.Resources.Limits.Cpu().String() != "4" {
		t.Errorf("resources not applied: %v", daemon.Resources.Limits)
	}
	// env merges with the default map (LEEWARD_LOG_LEVEL), in name order.
	if len(daemon.Env) != 2 || daemon.Env[1].Name != "LEEWARD_WORKERS" || daemon.Env[1].Value != "6" {
		t.Errorf("env = %v", daemon.Env)
	}
	if got := daemon.ReadinessProbe.Exec.Command; strings.Join(got, " ") != "leeward ping --socket /var/run/leeward-k8s/daemon.sock" {
		t.Errorf("readiness probe = %v", got)
	}
	if _, annotated := r.daemonSet.Spec.Template.Annotations["prometheus.io/scrape"]; annotated {
		t.Error("metrics.podAnnotations=false still annotates the pod")
	}
	if daemon.Ports[0].ContainerPort != 9191 || r.service == nil || r.service.Spec.Ports[0].Port != 9191 {
		t.Errorf("metrics port not applied to the container and the Service")
	}
	if r.serviceMonitor == nil || r.serviceMonitor.Spec.Endpoints[0].Port != "metrics" ||
		string(r.serviceMonitor.Spec.Endpoints[0].Interval) != "15s" || r.serviceMonitor.Labels["release"] != "prom" {
		t.Errorf("ServiceMonitor: %+v", r.serviceMonitor)
	}
	config := daemonConfig(t, r)
	if config["workers"] != int64(8) || config["shutdown_grace_secs"] != 42.5 || config["metrics_port"] != int64(9191) ||
		config["socket_path"] != "/var/run/leeward-k8s/daemon.sock" {
		t.Errorf("config.toml: %v", config)
	}
	if _, present := config["pids_max"]; present {
		t.Error("a config key set to null is left out of config.toml")
	}
}

func TestChartRefusesBadValues(t *testing.T) {
	for name, overrides := range map[string]map[string]any{
		"unknown profile":        {"securityProfile": "root"},
		"key owned by socket.*":  {"config": map[string]any{"socket_path": "/tmp/x.sock"}},
		"key owned by metrics.*": {"config": map[string]any{"metrics_port": 1}},
		"table value":            {"config": map[string]any{"workers": map[string]any{"n": 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := renderChart(chartDir, valuesYAML(overrides)); err == nil {
				t.Errorf("rendered with %v", overrides)
			}
		})
	}
}

func TestPlainManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]int{}
	for _, path := range plainManifests() {
		objects, err := decodeAll(path, readFile(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objects {
			kinds[obj.GetObjectKind().GroupVersionKind().Kind]++
		}
	}
	for _, kind := range []string{"Namespace", "ConfigMap", "DaemonSet", "Deployment"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s in %s (found %v)", kind, plainDir, kinds)
		}
	}
}

func TestPlainManifestsAreTheRenderedChart(t *testing.T) {
	stream, err := renderChart(chartDir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := renderedHeader + stream
	path := filepath.Join(plainDir, renderedManifest)
	if os.Getenv("LEEWARD_UPDATE_MANIFESTS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if readFile(path) != want {
		t.Errorf("%s differs from the chart rendered with its defaults; regenerate it (see its header)", path)
	}
}

// The acceptance check: a deliberately broken field in a copy must fail, whether the
// copy is a plain manifest or a chart template.
func TestBrokenFieldFails(t *testing.T) {
	breakages := []struct{ name, from, to, wantInError string }{
		{"unknown field", "readinessProbe:", "readinessProbes:", "readinessProbes"},
		{"mistyped field", "periodSeconds: 10", "periodSeconds: often", "periodSeconds"},
		{"misplaced field", "      enableServiceLinks: false", "      enableServiceLinks: false\n      replicas: 2", "replicas"},
	}
	plain := readFile(filepath.Join(plainDir, renderedManifest))
	for _, b := range breakages {
		t.Run("plain/"+b.name, func(t *testing.T) {
			broken := strings.Replace(plain, b.from, b.to, 1)
			if broken == plain {
				t.Fatalf("%q not found in %s", b.from, renderedManifest)
			}
			expectDecodeError(t, broken, b.wantInError)
		})
		t.Run("chart/"+b.name, func(t *testing.T) {
			copyDir := copyChart(t)
			template := filepath.Join(copyDir, "templates", "daemonset.yaml")
			text := readFile(template)
			broken := strings.Replace(text, b.from, b.to, 1)
			if broken == text {
				t.Fatalf("%q not found in the DaemonSet template", b.from)
			}
			if err := os.WriteFile(template, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			stream, err := renderChart(copyDir, "")
			if err != nil {
				t.Fatalf("the broken copy should still render (only decoding knows the API): %v", err)
			}
			expectDecodeError(t, stream, b.wantInError)
		})
	}
}

func expectDecodeError(t *testing.T, stream, wantInError string) {
	t.Helper()
	_, err := decodeAll("broken copy", stream)
	if err == nil {
		t.Fatal("the broken copy decoded without error")
	}
	if !strings.Contains(err.Error(), wantInError) {
		t.Errorf("error does not name %q: %v", wantInError, err)
	}
}

func copyChart(t *testing.T) string {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "leeward")
	if err := os.CopyFS(dest, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	return dest
}
