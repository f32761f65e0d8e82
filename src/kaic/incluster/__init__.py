"""Runs that live in the cluster (`kaic run --in-cluster`, `status`, `logs`, `retrieve`, `delete`).

The client creates a namespace, a ServiceAccount bound to the plan's ClusterRole and a Job whose pod runs the
same engine with the same options (`runner`); the runner publishes its progress and, at the end, its results
folder into ConfigMaps of its namespace (`store`), where they wait for `kaic retrieve` until the Job's TTL
removes them. `objects` names and builds those objects; `control` is what the client does with them.
"""
