// Package deploy checks leeward's Kubernetes objects without a cluster: the Helm chart
// renders (as `helm template` would, through Helm's own Go packages), and every rendered
// object and every plain manifest decodes strictly into the Kubernetes API's own Go
// types, so an unknown or mistyped field fails here instead of at `kubectl apply`.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../../deploy/helm/leeward"
	plainDir    = "../../deploy/k8s"
	releaseName = "leeward"
	namespace   = "leeward"
	// The oldest Kubernetes the chart claims (Chart.yaml kubeVersion), as `helm template
	// --kube-version` would pass it.
	renderForKubernetes = "v1.30.0"
	// The plain manifests' copy of the chart, rendered with its default values.
	renderedManifest = "leeward.yaml"
	renderedHeader   = "# Generated from deploy/helm/leeward with its default values (release \"leeward\", namespace\n" +
		"# \"leeward\"); do not edit: change the chart, then run\n" +
		"#   LEEWARD_UPDATE_MANIFESTS=1 go test -run TestPlainManifestsAreTheRenderedChart ./...\n" +
		"# in tests/deploy.\n"
)

// The kinds leeward ships; a document of any other kind fails to decode.
func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return scheme
}

var strictDecoder = func() runtime.Decoder {
	scheme := newScheme()
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}()

// decodeStrict turns one YAML document into its typed object; unknown, duplicate or
// mistyped fields and unregistered kinds are errors.
func decodeStrict(doc string) (runtime.Object, error) {
	obj, _, err := strictDecoder.Decode([]byte(doc), nil, nil)
	return obj, err
}

var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments returns the YAML documents of a stream that hold more than comments.
func splitDocuments(stream string) []string {
	var docs []string
	for _, doc := range documentSeparator.Split(stream, -1) {
		for _, line := range strings.Split(doc, "\n") {
			trimmed := strings.TrimSpace(line)
			if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
				docs = append(docs, doc)
				break
			}
		}
	}
	return docs
}

// decodeAll decodes every document of `stream`; the error names the document's source.
func decodeAll(source, stream string) ([]runtime.Object, error) {
	var objects []runtime.Object
	for i, doc := range splitDocuments(stream) {
		obj, err := decodeStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", source, i+1, err)
		}
		objects = append(objects, obj)
	}
	return objects, nil
}

// renderChart renders the chart in `dir` as `helm template` does, with `overrides`
// (YAML) over its values.yaml; the result is one stream, templates in name order.
func renderChart(dir, overrides string) (string, error) {
	chart, err := loader.Load(dir)
	if err != nil {
		return "", err
	}
	kubeVersion, err := chartutil.ParseKubeVersion(renderForKubernetes)
	if err != nil {
		return "", err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	if !chartutil.IsCompatibleRange(chart.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return "", fmt.Errorf("chart needs Kubernetes %s, rendering for %s", chart.Metadata.KubeVersion, caps.KubeVersion)
	}
	values, err := chartutil.ReadValues([]byte(overrides))
	if err != nil {
		return "", err
	}
	options := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	renderValues, err := chartutil.ToRenderValues(chart, values, options, caps)
	if err != nil {
		return "", err
	}
	// Strict: a template that reads a value the chart does not define fails.
	files, err := engine.Engine{Strict: true}.Render(chart, renderValues)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, ".yaml") && !strings.HasPrefix(filepath.Base(name), "_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, name := range names {
		if len(splitDocuments(files[name])) == 0 {
			continue // a template switched off by its values
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(files[name]))
	}
	return out.String(), nil
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// plainManifests lists deploy/k8s/*.yaml.
func plainManifests() []string {
	paths, err := filepath.Glob(filepath.Join(plainDir, "*.yaml"))
	if err != nil {
		panic(err)
	}
	return paths
}

// valuesYAML marshals test values (maps read better than YAML in Go strings).
func valuesYAML(values map[string]any) string {
	data, err := yaml.Marshal(values)
	if err != nil {
		panic(err)
	}
	return string(data)
}
