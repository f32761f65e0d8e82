// Command kaic-metrics-adapter serves pod metrics on custom.metrics.k8s.io by scraping the pods themselves.
//
// It is the local reference cluster's custom metrics pipeline: sigs.k8s.io/custom-metrics-apiserver does the
// API server work, and this file only finds pods that ask to be scraped (the common prometheus.io/scrape,
// prometheus.io/port and prometheus.io/path annotations), reads their text exposition and returns the sample
// named by the request. The HPA controller scales on what the pods really serve: there is no other channel.
//
// --stale is the broken mode kaic's tests need: each pod's first reading is served forever, as a pipeline
// whose scrapes stopped would, so an autoscaler looking at it never moves.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"

	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider/helpers"
)

var podsResource = schema.GroupResource{Resource: "pods"}

type podScraper struct {
	client kubernetes.Interface
	mapper apimeta.RESTMapper
	http   *http.Client
	stale  bool

	mu    sync.Mutex
	seen  map[string]bool                            // metric names read so far, for discovery
	first map[types.UID]map[string]resource.Quantity // --stale: each pod's first readings
}

// scrape reads one pod's exposition and returns the value of `metric`, summed over its series.
func (s *podScraper) scrape(ctx context.Context, pod *corev1.Pod, metric string) (resource.Quantity, error) {
	if pod.Annotations["prometheus.io/scrape"] != "true" {
		return resource.Quantity{}, fmt.Errorf("pod %s/%s is not annotated prometheus.io/scrape=true", pod.Namespace, pod.Name)
	}
	if pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning {
		return resource.Quantity{}, fmt.Errorf("pod %s/%s is not running with an IP", pod.Namespace, pod.Name)
	}
	s.mu.Lock()
	if frozen, ok := s.first[pod.UID][metric]; ok && s.stale {
		s.mu.Unlock()
		return frozen, nil
	}
	s.mu.Unlock()
	port, path := pod.Annotations["prometheus.io/port"], pod.Annotations["prometheus.io/path"]
	if port == "" {
		port = "8080"
	}
	if path == "" {
		path = "/metrics"
	}
	url := fmt.Sprintf("http://%s:%s/%s", pod.Status.PodIP, port, strings.TrimPrefix(path, "/"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return resource.Quantity{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return resource.Quantity{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resource.Quantity{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("GET %s: %w", url, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range families {
		s.seen[name] = true
	}
	family, ok := families[metric]
	if !ok {
		return resource.Quantity{}, fmt.Errorf("GET %s: no metric %q", url, metric)
	}
	total := 0.0
	for _, m := range family.GetMetric() {
		switch {
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	value := *resource.NewMilliQuantity(int64(total*1000), resource.DecimalSI)
	if s.stale {
		if s.first[pod.UID] == nil {
			s.first[pod.UID] = map[string]resource.Quantity{}
		}
		s.first[pod.UID][metric] = value
	}
	return value, nil
}

func (s *podScraper) valueOf(ctx context.Context, pod *corev1.Pod, info provider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	value, err := s.scrape(ctx, pod, info.Metric)
	if err != nil {
		return nil, err
	}
	ref, err := helpers.ReferenceFor(s.mapper, types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, info)
	if err != nil {
		return nil, err
	}
	out := &custom_metrics.MetricValue{
		DescribedObject: ref,
		Metric:          custom_metrics.MetricIdentifier{Name: info.Metric},
		Timestamp:       metav1.Now(),
		Value:           value,
	}
	if !metricSelector.Empty() {
		if out.Metric.Selector, err = metav1.ParseToLabelSelector(metricSelector.String()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *podScraper) GetMetricByName(ctx context.Context, name types.NamespacedName, info provider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	if info.GroupResource != podsResource {
		return nil, provider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	pod, err := s.client.CoreV1().Pods(name.Namespace).Get(ctx, name.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	value, err := s.valueOf(ctx, pod, info, metricSelector)
	if err != nil {
		klog.InfoS("no value", "pod", klog.KObj(pod), "metric", info.Metric, "err", err)
		return nil, provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	}
	return value, nil
}

// GetMetricBySelector returns the pods that serve the metric; a pod that serves nothing is left out, as the HPA
// expects (it treats missing pods as not ready yet).
func (s *podScraper) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info provider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	if info.GroupResource != podsResource {
		return nil, provider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	pods, err := s.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	list := &custom_metrics.MetricValueList{}
	for i := range pods.Items {
		value, err := s.valueOf(ctx, &pods.Items[i], info, metricSelector)
		if err != nil {
			klog.InfoS("no value", "pod", klog.KObj(&pods.Items[i]), "metric", info.Metric, "err", err)
			continue
		}
		list.Items = append(list.Items, *value)
	}
	if len(list.Items) == 0 {
		return nil, provider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	return list, nil
}

func (s *podScraper) ListAllMetrics() []provider.CustomMetricInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	infos := make([]provider.CustomMetricInfo, 0, len(s.seen))
	for name := range s.seen {
		infos = append(infos, provider.CustomMetricInfo{GroupResource: podsResource, Namespaced: true, Metric: name})
	}
	return infos
}

func main() {
	logs.InitLogs()
	defer logs.FlushLogs()

	adapter := &basecmd.AdapterBase{Name: "kaic-metrics-adapter"}
	stale := adapter.Flags().Bool("stale", false, "broken mode: serve each pod's first reading forever")
	logs.AddFlags(adapter.Flags())
	if err := adapter.Flags().Parse(os.Args); err != nil {
		klog.Fatalf("flags: %v", err)
	}
	config, err := adapter.ClientConfig()
	if err != nil {
		klog.Fatalf("client config: %v", err)
	}
	mapper, err := adapter.RESTMapper()
	if err != nil {
		klog.Fatalf("REST mapper: %v", err)
	}
	scraper := &podScraper{
		client: kubernetes.NewForConfigOrDie(config),
		mapper: mapper,
		http:   &http.Client{Timeout: 3 * time.Second},
		stale:  *stale,
		seen:   map[string]bool{},
		first:  map[types.UID]map[string]resource.Quantity{},
	}
	adapter.WithCustomMetrics(scraper)
	if err := adapter.Run(context.Background()); err != nil {
		klog.Fatalf("adapter: %v", err)
	}
}
