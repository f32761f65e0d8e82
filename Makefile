# kaic developer targets. Each target's owner documents it where it builds; add targets below, keep them
# independent.
#
# cluster        builds the local reference cluster's binaries into cluster/bin (see cluster/README.md):
#                kaic-cluster (etcd + kube-apiserver/controller-manager/scheduler, multi-call) and kwok.
#                Cached by file times: a no-op while the binaries are newer than go.mod, go.sum and sources.
#                Prints the time of each phase (module download, compile+link); a cold build is long.
# cluster-clean  removes cluster/bin (the Go module and build caches are left alone).

GO ?= go
CLUSTER_BIN := cluster/bin
CLUSTER_SOURCES := $(shell find cluster/cmd -name '*.go' 2>/dev/null)

.PHONY: cluster cluster-clean

cluster: $(CLUSTER_BIN)/kaic-cluster $(CLUSTER_BIN)/kwok

# $(call timed,LABEL,DIR,COMMAND): run COMMAND in DIR and report how long it took.
timed = start=$$(date +%s); (cd $(2) && $(3)) && echo "cluster: $(1) took $$(( $$(date +%s) - start ))s"

$(CLUSTER_BIN)/kaic-cluster: cluster/go.mod cluster/go.sum $(CLUSTER_SOURCES)
	@$(call timed,kaic-cluster module download,cluster,$(GO) list -deps ./cmd/kaic-cluster >/dev/null)
	@$(call timed,kaic-cluster compile+link,cluster,CGO_ENABLED=0 $(GO) build -trimpath -o bin/kaic-cluster ./cmd/kaic-cluster)

$(CLUSTER_BIN)/kwok: cluster/kwok/go.mod cluster/kwok/go.sum
	@$(call timed,kwok module download,cluster/kwok,$(GO) list -deps sigs.k8s.io/kwok/cmd/kwok >/dev/null)
	@$(call timed,kwok compile+link,cluster/kwok,CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/kwok sigs.k8s.io/kwok/cmd/kwok)

cluster-clean:
	rm -rf $(CLUSTER_BIN)
