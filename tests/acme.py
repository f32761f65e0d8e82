"""The sample vendor every submission test uses: its PRODUCT.yaml fields, stated once."""

from __future__ import annotations

from pathlib import Path

import yaml

PRODUCT = {
    "vendorName": "Acme",
    "platformName": "Acme AI Platform",
    "platformVersion": "2.1",
    "description": "Acme's platform for AI workloads.",
    "contactEmailAddress": "ai@acme.example",
    "websiteUrl": "https://acme.example/",
    "documentationUrl": "https://acme.example/docs",
    "productLogoUrl": "https://acme.example/logo.svg",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.37/acme",
}


def product_file(path: Path) -> Path:
    """Write PRODUCT as the product file `kaic submission create --product` reads."""
    path.write_text(yaml.safe_dump(PRODUCT), encoding="utf-8")
    return path
