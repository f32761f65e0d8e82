# kaic developer targets. Each target's owner documents it where it builds; add targets below, keep them
# independent.
#
# cluster        builds the local reference cluster's binaries into cluster/bin (see cluster/README.md):
#                kaic-cluster (etcd + kube-apiserver/controller-manager/scheduler, multi-call) and kwok.
#                The Cluster Autoscaler is not among them: the Go module proxy refuses its module (cluster/README.md).
#                Cached by file times: a no-op while the binaries are newer than go.mod, go.sum and sources.
#                Prints the time of each phase (module download, compile+link); a cold build is long.
#                Also the real worker node (cluster/node, see cluster/README.md): containerd, its runc shim,
#                ctr, runc (cgo, for nsenter), the CNI plugins bridge, host-local and loopback into cluster/bin/cni,
#                kaic-pause (the sandbox image's binary), busybox from Debian's busybox-static package, and
#                the dra-example-driver kubelet plugin (cluster/dra); gVisor's runsc and kaic-runsc (cluster/gvisor).
# karpenter      Karpenter's kwok cloud provider (cluster/karpenter) and its CRDs into cluster/bin, for the
#                `karpenter` scenarios; part of `cluster` too (cluster/README.md, "Karpenter (kwok provider)").
# kueue          Kueue's controller manager and its manifests into cluster/bin (cluster/README.md, "Kueue"), for
#                the kueue scenarios; part of `cluster`.
# cluster-clean  removes cluster/bin (the Go module and build caches are left alone).

GO ?= go
CLUSTER_BIN := cluster/bin
CLUSTER_SOURCES := $(shell find cluster/cmd -name '*.go' 2>/dev/null)
# Stamp the release into /version (module builds otherwise report v0.0.0-master): kaic picks its
# checklist from the server's version.
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" {print $$2}' cluster/go.mod)
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(pkg).gitVersion=$(KUBE_VERSION) -X $(pkg).gitMajor=1 -X $(pkg).gitMinor=$(KUBE_MINOR) \
	-X $(pkg).gitTreeState=clean)

.PHONY: cluster cluster-clean

cluster: $(CLUSTER_BIN)/kaic-cluster $(CLUSTER_BIN)/kwok

# $(call timed,LABEL,DIR,COMMAND): run COMMAND in DIR and report how long it took.
timed = start=$$(date +%s); (cd $(2) && $(3)) && echo "cluster: $(1) took $$(( $$(date +%s) - start ))s"

$(CLUSTER_BIN)/kaic-cluster: cluster/go.mod cluster/go.sum $(CLUSTER_SOURCES)
	@$(call timed,kaic-cluster module download,cluster,$(GO) list -deps ./cmd/kaic-cluster >/dev/null)
	@$(call timed,kaic-cluster compile+link,cluster,CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o bin/kaic-cluster ./cmd/kaic-cluster)

$(CLUSTER_BIN)/kwok: cluster/kwok/go.mod cluster/kwok/go.sum
	@$(call timed,kwok module download,cluster/kwok,$(GO) list -deps sigs.k8s.io/kwok/cmd/kwok >/dev/null)
	@$(call timed,kwok compile+link,cluster/kwok,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/kwok sigs.k8s.io/kwok/cmd/kwok)

# The custom metrics adapter (sigs.k8s.io/custom-metrics-apiserver) of the pod-autoscaling scenarios.
$(CLUSTER_BIN)/kaic-metrics-adapter: cluster/metrics-adapter/go.mod cluster/metrics-adapter/go.sum cluster/metrics-adapter/main.go
	@$(call timed,metrics-adapter compile+link,cluster/metrics-adapter,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/kaic-metrics-adapter .)
cluster: $(CLUSTER_BIN)/kaic-metrics-adapter

# Upstream Prometheus for the observability scenarios (cluster/prometheus/go.mod pins its module). Only the
# kubernetes service discovery is compiled in; the web UI's assets are not (the HTTP API needs none).
PROMETHEUS_TAGS := remove_all_sd,enable_kubernetes_sd
$(CLUSTER_BIN)/prometheus: cluster/prometheus/go.mod cluster/prometheus/go.sum
	@$(call timed,prometheus module download,cluster/prometheus,$(GO) list -deps tool >/dev/null)
	@$(call timed,prometheus compile+link,cluster/prometheus,CGO_ENABLED=0 $(GO) build -trimpath \
	  -tags $(PROMETHEUS_TAGS) -o ../bin/prometheus github.com/prometheus/prometheus/cmd/prometheus)
cluster: $(CLUSTER_BIN)/prometheus

# ---- The real worker node: container runtime, CNI plugins and image contents (cluster/node/go.mod) ----------
NODE_MOD := cluster/node/go.mod cluster/node/go.sum
NODE_SOURCES := $(shell find cluster/node/cmd -name '*.go' 2>/dev/null)
CONTAINERD_VERSION := $(shell awk '$$1 == "github.com/containerd/containerd/v2" {print $$2}' cluster/node/go.mod)
RUNC_VERSION := $(shell awk '$$1 == "github.com/opencontainers/runc" {print $$2}' cluster/node/go.mod)
CONTAINERD_LDFLAGS := -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)
CNI_PLUGINS := github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/ipam/host-local \
	github.com/containernetworking/plugins/plugins/main/loopback
# Debian's static busybox: the one binary of the kaic.local/busybox image. Upgrade with the archive.
BUSYBOX_DEB := busybox-static=1:1.35.0-4+deb12u1+b1
NODE_TARGETS := $(CLUSTER_BIN)/containerd $(CLUSTER_BIN)/runc $(CLUSTER_BIN)/cni/bridge \
	$(CLUSTER_BIN)/kaic-pause $(CLUSTER_BIN)/busybox
cluster: $(NODE_TARGETS) $(CLUSTER_BIN)/dra-example-kubeletplugin

# containerd, its runc shim and ctr (image import) are pure Go; btrfs and other cgo-only plugins drop out.
$(CLUSTER_BIN)/containerd: $(NODE_MOD)
	@$(call timed,node module download,cluster/node,$(GO) list -deps tool >/dev/null)
	@$(call timed,containerd compile+link,cluster/node,CGO_ENABLED=0 $(GO) build -trimpath \
	  -ldflags '$(CONTAINERD_LDFLAGS)' -o ../bin/ github.com/containerd/containerd/v2/cmd/containerd \
	  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr)

# runc needs cgo: its nsenter package is C that runs before the Go runtime starts. containerd gives every
# pod sandbox the RuntimeDefault seccomp profile, so runc needs the `seccomp` tag and libseccomp: headers
# and the static library come from Debian's libseccomp-dev, unpacked (nothing installed) into a fixed folder
# outside the checkout. Fixed, because Go's build cache keeps the -L path pkg-config gave the first build: a
# temporary or per-checkout folder would be gone (or another clone's) when a later build reuses that entry.
LIBSECCOMP_DEB := libseccomp-dev=2.5.4-1+deb12u1
LIBSECCOMP_DIR := $(HOME)/.cache/kaic/libseccomp-dev-2.5.4-1+deb12u1
LIBSECCOMP_PC := $(LIBSECCOMP_DIR)/usr/lib/x86_64-linux-gnu/pkgconfig
$(LIBSECCOMP_PC)/libseccomp.pc:
	@rm -rf $(LIBSECCOMP_DIR) && mkdir -p $(LIBSECCOMP_DIR) && cd $(LIBSECCOMP_DIR) \
	  && apt-get download -q -o APT::Sandbox::User=root '$(LIBSECCOMP_DEB)' >/dev/null \
	  && dpkg-deb -x libseccomp-dev_*.deb . && rm libseccomp-dev_*.deb usr/lib/x86_64-linux-gnu/libseccomp.so \
	  && sed -i "s|^prefix=.*|prefix=$(LIBSECCOMP_DIR)/usr|" $@

$(CLUSTER_BIN)/runc: $(NODE_MOD) $(LIBSECCOMP_PC)/libseccomp.pc
	@$(call timed,runc compile+link,cluster/node,PKG_CONFIG_PATH=$(LIBSECCOMP_PC) CGO_LDFLAGS=-L$(LIBSECCOMP_DIR)/usr/lib/x86_64-linux-gnu CGO_ENABLED=1 $(GO) build -trimpath \
	  -tags seccomp -ldflags '-X main.version=$(RUNC_VERSION:v%=%)' -o ../bin/runc github.com/opencontainers/runc)

$(CLUSTER_BIN)/cni/bridge: $(NODE_MOD)
	@mkdir -p $(CLUSTER_BIN)/cni
	@$(call timed,CNI plugins compile+link,cluster/node,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/cni/ $(CNI_PLUGINS))

$(CLUSTER_BIN)/kaic-pause: $(NODE_MOD) $(NODE_SOURCES)
	@$(call timed,kaic-pause compile+link,cluster/node,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/kaic-pause ./cmd/kaic-pause)

# apt-get download fetches from the mirror apt already uses; dpkg-deb unpacks without installing.
$(CLUSTER_BIN)/busybox:
	@mkdir -p $(CLUSTER_BIN)
	@tmp=$$(mktemp -d) && (cd $$tmp && apt-get download -q -o APT::Sandbox::User=root '$(BUSYBOX_DEB)' >/dev/null && dpkg-deb -x busybox-static_*.deb root) \
	  && install -m 0755 $$tmp/root/bin/busybox $@ && rm -rf $$tmp && echo "cluster: busybox from $(BUSYBOX_DEB)"

# The upstream dra-example-driver's kubelet plugin, run as a process on the real node (cluster/dra/go.mod:
# it requires k8s.io/* v0.36, which the 0.37 pins of cluster/go.mod rule out, so it is its own module).
$(CLUSTER_BIN)/dra-example-kubeletplugin: cluster/dra/go.mod cluster/dra/go.sum
	@$(call timed,dra-example-driver module download,cluster/dra,$(GO) list -deps tool >/dev/null)
	@$(call timed,dra-example-kubeletplugin compile+link,cluster/dra,CGO_ENABLED=0 $(GO) build -trimpath \
	  -o ../bin/dra-example-kubeletplugin sigs.k8s.io/dra-example-driver/cmd/dra-example-kubeletplugin)

# Kubeflow Trainer's controller manager and JobSet's (cluster/trainer/go.mod: both need k8s.io/* v0.36), run as pods
# on the real node by the `operator` scenarios, and the manifests they are installed from, copied out of the
# modules (CRDs, RBAC, manager, webhook configurations and their kustomize patches; src/kaic/localcluster/operator.py).
TRAINER_MOD := cluster/trainer/go.mod cluster/trainer/go.sum
OPERATOR_MANIFESTS := $(CLUSTER_BIN)/operator-manifests
cluster: $(CLUSTER_BIN)/trainer-controller-manager $(OPERATOR_MANIFESTS)/.copied

$(CLUSTER_BIN)/trainer-controller-manager: $(TRAINER_MOD)
	@$(call timed,trainer module download,cluster/trainer,$(GO) list -deps tool >/dev/null)
	@$(call timed,trainer-controller-manager and jobset compile+link,cluster/trainer,CGO_ENABLED=0 $(GO) build -trimpath \
	  -o ../bin/ github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager sigs.k8s.io/jobset)

$(OPERATOR_MANIFESTS)/.copied: $(TRAINER_MOD)
	@rm -rf $(OPERATOR_MANIFESTS) && mkdir -p $(OPERATOR_MANIFESTS)/trainer $(OPERATOR_MANIFESTS)/jobset
	@trainer=$$(cd cluster/trainer && $(GO) list -m -f '{{.Dir}}' github.com/kubeflow/trainer/v2) \
	  && jobset=$$(cd cluster/trainer && $(GO) list -m -f '{{.Dir}}' sigs.k8s.io/jobset) \
	  && cp -r $$trainer/manifests/base/crds $$trainer/manifests/base/rbac $$trainer/manifests/base/manager \
	     $$trainer/manifests/base/webhook $(OPERATOR_MANIFESTS)/trainer/ \
	  && cp -r $$jobset/config/components/crd $$jobset/config/components/rbac $$jobset/config/components/manager \
	     $$jobset/config/components/webhook $(OPERATOR_MANIFESTS)/jobset/ \
	  && chmod -R u+w $(OPERATOR_MANIFESTS) && touch $@ && echo "cluster: operator manifests from $$trainer and $$jobset"

# Kueue's controller manager (`cmd/kueue`; sigs.k8s.io/kueue pinned in cluster/trainer/go.mod): Kueue requires
# k8s.io/* v0.35.3, controller-runtime v0.23, Trainer v2.2.0 and JobSet v0.11.1, and compiles against the newer
# versions cluster/trainer/go.mod already pins. Beside it the manifests its `config/default` kustomization deploys
# (CRDs, RBAC, manager Deployment and its Configuration ConfigMap, webhook configurations and Service, the internal
# cert Secret, the visibility APIService, and the default kustomization's patches), which the kueue scenarios
# install (src/kaic/localcluster/kueue.py).
KUEUE_MANIFESTS := $(CLUSTER_BIN)/kueue-manifests
KUEUE_VERSION := $(shell awk '$$1 == "sigs.k8s.io/kueue" {print $$2}' cluster/trainer/go.mod)
.PHONY: kueue
kueue: $(CLUSTER_BIN)/kueue-controller-manager $(KUEUE_MANIFESTS)/.copied
cluster: kueue

$(CLUSTER_BIN)/kueue-controller-manager: $(TRAINER_MOD)
	@$(call timed,kueue module download,cluster/trainer,$(GO) list -deps sigs.k8s.io/kueue/cmd/kueue >/dev/null)
	@$(call timed,kueue-controller-manager compile+link,cluster/trainer,CGO_ENABLED=0 $(GO) build -trimpath \
	  -ldflags '-X sigs.k8s.io/kueue/pkg/version.GitVersion=$(KUEUE_VERSION)' \
	  -o ../bin/kueue-controller-manager sigs.k8s.io/kueue/cmd/kueue)

$(KUEUE_MANIFESTS)/.copied: $(TRAINER_MOD)
	@rm -rf $(KUEUE_MANIFESTS) && mkdir -p $(KUEUE_MANIFESTS)
	@kueue=$$(cd cluster/trainer && $(GO) list -m -f '{{.Dir}}' sigs.k8s.io/kueue) \
	  && cp -r $$kueue/config/components/crd $$kueue/config/components/rbac $$kueue/config/components/manager \
	     $$kueue/config/components/webhook $$kueue/config/components/internalcert $$kueue/config/components/visibility \
	     $$kueue/config/default $(KUEUE_MANIFESTS)/ \
	  && chmod -R u+w $(KUEUE_MANIFESTS) && touch $@ && echo "cluster: kueue manifests from $$kueue"

# The Gateway API implementation of the `gateway` scenarios (src/kaic/localcluster/gateway.py): Traefik's own main,
# pinned in cluster/gateway/go.mod at v3.6.12 (v3.7.x imports github.com/traefik/traefik/dynamic/ext, a nested
# module the Go module proxy refuses; see cluster/README.md), the ClusterRole Traefik documents for its
# kubernetesGateway provider, and the standard-install CRDs of sigs.k8s.io/gateway-api GATEWAY_API_VERSION
# (downloaded and checksum-verified by `go mod download`; not a requirement of the Traefik module, whose
# gateway-api v1.4.0 types it is built against).
GATEWAY_MOD := cluster/gateway/go.mod cluster/gateway/go.sum
GATEWAY_API_VERSION := v1.6.3
GATEWAY_CRDS := $(CLUSTER_BIN)/gateway-api-crds
TRAEFIK_VERSION := $(shell awk '$$1 == "github.com/traefik/traefik/v3" {print $$2}' cluster/gateway/go.mod)
cluster: $(CLUSTER_BIN)/traefik $(CLUSTER_BIN)/traefik-gateway-rbac.yml $(GATEWAY_CRDS)/.copied

$(CLUSTER_BIN)/traefik: $(GATEWAY_MOD)
	@$(call timed,traefik module download,cluster/gateway,$(GO) list -deps tool >/dev/null)
	@$(call timed,traefik compile+link,cluster/gateway,CGO_ENABLED=0 $(GO) build -trimpath \
	  -ldflags '-X github.com/traefik/traefik/v3/pkg/version.Version=$(TRAEFIK_VERSION)' \
	  -o ../bin/traefik github.com/traefik/traefik/v3/cmd/traefik)

$(CLUSTER_BIN)/traefik-gateway-rbac.yml: $(GATEWAY_MOD)
	@mkdir -p $(CLUSTER_BIN) && traefik=$$(cd cluster/gateway && $(GO) list -m -f '{{.Dir}}' github.com/traefik/traefik/v3) \
	  && install -m 0644 $$traefik/docs/content/reference/dynamic-configuration/kubernetes-gateway-rbac.yml $@

$(GATEWAY_CRDS)/.copied: Makefile
	@rm -rf $(GATEWAY_CRDS) && mkdir -p $(GATEWAY_CRDS) \
	  && dir=$$(cd / && $(GO) mod download -json sigs.k8s.io/gateway-api@$(GATEWAY_API_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') \
	  && test -n "$$dir" && install -m 0644 $$dir/config/crd/kustomization.yaml $$dir/config/crd/standard/*.yaml $(GATEWAY_CRDS)/ \
	  && touch $@ && echo "cluster: Gateway API standard CRDs from $$dir"

# gVisor for the `sandbox` scenario (cluster/gvisor/go.mod pins the pseudo-version the proxy serves for gVisor's
# `go` branch): runsc, and kaic-runsc, which puts it behind containerd's runc shim (cluster/README.md). Pure Go.
GVISOR_MOD := cluster/gvisor/go.mod cluster/gvisor/go.sum
cluster: $(CLUSTER_BIN)/runsc $(CLUSTER_BIN)/kaic-runsc

$(CLUSTER_BIN)/runsc: $(GVISOR_MOD)
	@$(call timed,gvisor module download,cluster/gvisor,$(GO) list -deps tool >/dev/null)
	@$(call timed,runsc compile+link,cluster/gvisor,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/runsc gvisor.dev/gvisor/runsc)

$(CLUSTER_BIN)/kaic-runsc: $(GVISOR_MOD) $(shell find cluster/gvisor/cmd -name '*.go' 2>/dev/null)
	@$(call timed,kaic-runsc compile+link,cluster/gvisor,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/kaic-runsc ./cmd/kaic-runsc)

# Karpenter with its kwok cloud provider (cluster/karpenter/go.mod: upstream's kwok/ main package, no code of ours)
# and the CRDs it needs: NodePool and NodeClaim as the kwok chart ships them, and KWOKNodeClass. Its own target,
# and part of `cluster` (the `karpenter` scenarios run it). The module's `go` line (1.26.9) is above the machine's
# Go: GOTOOLCHAIN=auto fetches that toolchain through the module proxy (checksum-verified, kept in GOMODCACHE)
# where the local Go is older.
KARPENTER_MOD := cluster/karpenter/go.mod cluster/karpenter/go.sum
KARPENTER_GO := GOTOOLCHAIN=auto $(GO)
KARPENTER_VERSION := $(shell awk '$$1 == "sigs.k8s.io/karpenter" {print $$2}' cluster/karpenter/go.mod)
KARPENTER_CRDS := $(CLUSTER_BIN)/karpenter-crds
.PHONY: karpenter
karpenter: $(CLUSTER_BIN)/karpenter $(KARPENTER_CRDS)/.copied
cluster: karpenter

$(CLUSTER_BIN)/karpenter: $(KARPENTER_MOD)
	@$(call timed,karpenter module download,cluster/karpenter,$(KARPENTER_GO) list -deps tool >/dev/null)
	@$(call timed,karpenter compile+link,cluster/karpenter,CGO_ENABLED=0 $(KARPENTER_GO) build -trimpath \
	  -ldflags '-X sigs.k8s.io/karpenter/pkg/operator.Version=$(KARPENTER_VERSION)' \
	  -o ../bin/karpenter sigs.k8s.io/karpenter/kwok)

$(KARPENTER_CRDS)/.copied: $(KARPENTER_MOD)
	@rm -rf $(KARPENTER_CRDS) && mkdir -p $(KARPENTER_CRDS) \
	  && dir=$$(cd cluster/karpenter && $(KARPENTER_GO) list -m -f '{{.Dir}}' sigs.k8s.io/karpenter) \
	  && install -m 0644 $$dir/kwok/charts/crds/karpenter.sh_nodepools.yaml $$dir/kwok/charts/crds/karpenter.sh_nodeclaims.yaml \
	     $$dir/kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml $(KARPENTER_CRDS)/ \
	  && touch $@ && echo "cluster: Karpenter CRDs from $$dir"

cluster-clean:
	rm -rf $(CLUSTER_BIN)

# ---- Python side -----------------------------------------------------------------------------------------
# venv           .venv with kaic (editable) and its dev tools; rebuilt when pyproject.toml changes.
# tools          gotestsum into .tools/bin (golden go-test artifacts are compared with it).
# unit           the tests that need no cluster and no Go build (tests/unit), for the edit-test loop.
# test           the whole suite: unit tests, the local-cluster tests and kaic end to end against it.
# demo           builds and starts the reference cluster (root), runs `kaic run --profile ai-v1.0 --mode certified`
#                against it with no flag beyond the exports `cluster up` prints, stops it.
# lint           ruff format --check and ruff check, mypy (src/kaic and conformance/; settings in pyproject.toml); gofmt and go vet.
# rbac-examples  regenerates examples/rbac/ from the probes' declared permissions.
# docs           regenerates docs/cli.md from the click commands, docs/test-plans.md from the probe modules'
#                docstrings (tests/unit/cli/test_docs.py keeps both current) and conformance/catalog.json from their
#                @probe declarations, which `kaic plan` reads instead of importing them (tests/unit/engine/test_plan.py
#                keeps it current).

PYTHON ?= python3
VENV := .venv
KAIC := $(VENV)/bin/kaic
GOTESTSUM_VERSION := v1.13.0
DEMO_DIR ?= kaic-results-demo

.PHONY: venv tools unit test demo lint rbac-examples docs

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $@

tools: .tools/bin/gotestsum
.tools/bin/gotestsum:
	GOBIN=$(abspath .tools/bin) CGO_ENABLED=0 $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

unit: venv
	$(VENV)/bin/python -m pytest tests/unit -q

test: venv tools cosign cluster image
	$(VENV)/bin/python -m pytest

# The first look at kaic: build what the reference cluster needs, bring it up, run the certified profile with
# only what `cluster up` tells a user to export (KUBECONFIG, KAIC_CONFIG), print the verdict, stop the cluster.
# Exit codes 0 (conformant), 1 (not conformant) and 4 (undetermined) are completed runs; the cluster always stops.
demo: venv
	@echo "demo: building the local reference cluster (a first build on 2 cores takes about 35 minutes, with a"
	@echo "demo: line per component; later builds take seconds), then a certified run against it"
	@$(MAKE) --no-print-directory cluster
	$(KAIC) cluster up > $(DEMO_DIR).env && cat $(DEMO_DIR).env
	rm -rf $(DEMO_DIR); eval "$$(grep '^export ' $(DEMO_DIR).env)"; rm -f $(DEMO_DIR).env; \
	  $(KAIC) run --profile ai-v1.0 --mode certified --output-dir $(DEMO_DIR); \
	  rc=$$?; $(KAIC) cluster down; case $$rc in 0|1|4) echo "demo: run completed (exit $$rc), results in $(DEMO_DIR)";; *) exit $$rc;; esac

lint: venv
	$(VENV)/bin/ruff format --check src conformance tests bench
	$(VENV)/bin/ruff check src conformance tests bench
	$(VENV)/bin/mypy
	cd cluster && test -z "$$(gofmt -l cmd)" && $(GO_VET) ./...
	cd cluster/node && test -z "$$(gofmt -l cmd)" && $(GO_VET) ./...
	cd cluster/gvisor && test -z "$$(gofmt -l cmd)" && $(GO_VET) ./...
	cd cluster/metrics-adapter && test -z "$$(gofmt -l .)" && $(GO_VET) ./...
	cd cluster/image && test -z "$$(gofmt -l .)" && $(GO_VET) ./...

# go vet with the builds' own flags reuses the packages they compiled: with go's defaults it compiles every
# dependency again, 9 of a cold CI's minutes.
GO_VET = CGO_ENABLED=0 $(GO) vet -trimpath

rbac-examples: venv
	mkdir -p examples/rbac
	for mode in quick non-disruptive certified; do $(KAIC) plan --mode $$mode --rbac > examples/rbac/kaic-$$mode.yaml; done

docs: venv
	$(VENV)/bin/python -m kaic.cli.reference > docs/cli.md
	$(VENV)/bin/python -m kaic.cli.reference --test-plans > docs/test-plans.md
	$(VENV)/bin/python -m kaic.engine.plan > conformance/catalog.json

# ---- Signing interop -------------------------------------------------------------------------------------
# cosign         cosign (COSIGN_VERSION) into .tools/bin from the Go module proxy; the interop tests
#                (tests/unit/certify/test_cosign_interop.py) verify kaic's signatures and bundles with it:
#                skipped without it, a failure when CI=true. A cold build is long (about 9 minutes, a 140 MB
#                binary).

COSIGN_VERSION := v3.1.3

.PHONY: cosign

cosign: .tools/bin/cosign
.tools/bin/cosign:
	GOBIN=$(abspath .tools/bin) CGO_ENABLED=0 $(GO) install -trimpath github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)

# ---- Runner image ----------------------------------------------------------------------------------------
# image          the kaic runner image as an OCI image layout archive, dist/kaic-runner.tar, built without a
#                container engine (docs/in-cluster.md): cluster/image/rootfs.sh assembles the tree (Debian's Python
#                3.11, kaic's wheel and its pinned dependencies), kaic-image (cluster/image, go-containerregistry)
#                writes it as one layer. Rebuilt from scratch when a tracked file of kaic or of the image changed;
#                the same commit gives the same digest (SOURCE_DATE_EPOCH defaults to the commit's time). Needs root (ownership kept by dpkg-deb) and
#                apt's and PyPI's mirrors. `ctr images import` reads it.

IMAGE := dist/kaic-runner.tar
KAIC_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/kaic/__init__.py)
IMAGE_REF := kaic.local/kaic-runner:$(KAIC_VERSION)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct)
# A CPython 3.11 pip (the image's Python) that has --build-constraint.
IMAGE_PIP ?= $(abspath $(VENV))/bin/pip
IMAGE_SOURCES := cluster/image/go.mod cluster/image/go.sum $(shell find cluster/image/cmd -name '*.go' 2>/dev/null)

.PHONY: image

.tools/bin/kaic-image: $(IMAGE_SOURCES)
	cd cluster/image && CGO_ENABLED=0 $(GO) build -trimpath -o ../../$@ ./cmd/kaic-image

# What goes into the image: kaic's wheel (its sources, probes, profiles) and the image's own pins and scripts.
IMAGE_INPUTS := $(shell git ls-files src conformance profiles pyproject.toml cluster/image 2>/dev/null)

image: $(IMAGE)

$(IMAGE): .tools/bin/kaic-image $(IMAGE_INPUTS) | $(if $(filter $(abspath $(VENV))/bin/pip,$(IMAGE_PIP)),venv)
	@rm -rf $(IMAGE).rootfs && mkdir -p $(IMAGE).rootfs
	cluster/image/rootfs.sh $(IMAGE_PIP) $(abspath $(IMAGE).rootfs)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) .tools/bin/kaic-image -rootfs $(IMAGE).rootfs -o $(IMAGE) -ref $(IMAGE_REF) \
	  -entrypoint /usr/bin/python3 -entrypoint -m -entrypoint kaic \
	  -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -env HOME=/home/kaic \
	  -user 65532:65532 -workdir /home/kaic -owner home/kaic=65532:65532 \
	  -label org.opencontainers.image.title=kaic-runner -label org.opencontainers.image.version=$(KAIC_VERSION) \
	  > $(IMAGE).digest
	@rm -rf $(IMAGE).rootfs
	@echo "image: $(IMAGE_REF) $$(cat $(IMAGE).digest), $$(du -h $(IMAGE) | cut -f1) ($(IMAGE))"
