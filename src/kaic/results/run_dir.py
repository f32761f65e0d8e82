"""The file names of a kaic run folder, stated once: what `kaic run` writes, what `kaic sign` adds.

A submission folder copies JUNIT_FILE, RESULTS_FILE and E2E_LOG_FILE under these same names, the ones the
CNCF program's validator reads; PRODUCT_FILE is that program's checklist, which a run folder may hold too.
"""

# The result tree, and the artifacts derived from it (kaic.results.writers).
REPORT_FILE = "report.json"
JUNIT_FILE = "junit.xml"  # go-test view, as gotestsum writes it
RESULTS_FILE = "results.json"  # go-test view, `go test -json` events
E2E_LOG_FILE = "e2e.log"  # go-test view, `go test -v` text
KAIC_JUNIT_FILE = "kaic-junit.xml"
SUMMARY_FILE = "summary.md"

# What the engine leaves beside them.
FACTS_FILE = "facts.json"
RUN_SETTINGS_FILE = "run-settings.json"
PYTEST_LOG_FILE = "pytest.log"
TRACEBACK_FILE = "kaic-internal-error.txt"  # only after a bug inside kaic

# What `kaic sign` adds (kaic.certify.sign).
ENVELOPE_FILE = "report.intoto.json"
BUNDLE_FILE = "report.sigstore.json"
SIGNATURE_FILE = "report.json.sig"

PRODUCT_FILE = "PRODUCT.yaml"
