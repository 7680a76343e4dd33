"""The catalog as DCAT-3 JSON-LD, for data spaces and open-data portals to harvest.

One ``dcat:Catalog`` holds a ``dcat:Dataset`` per dataset; each version is a
``dcat:Distribution`` (Parquet, version number, issue time) that is not
downloadable: its ``dcat:accessURL`` is the dataset's page, where access is
requested. ``dct:conformsTo`` points at the standard the dataset follows. The
``@context`` is inline, so a reader never needs the network to expand it.

The export is made to be harvested and republished, so it holds public metadata
only, whoever asks for it: no byte size, checksum or row count (DCAT makes all of
them optional), which would tell versions one person apart or let a guesser match
rebuilt files (see docs/privacy.md, "What anyone can see").

Reference: DCAT 3 (https://www.w3.org/TR/vocab-dcat-3/).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from entrepot.exchange.catalog import Catalog, CatalogVersion, DatasetPage

__all__ = ["CONTEXT", "PARQUET_MEDIA_TYPE", "export_dcat"]

# IANA registered Parquet in 2024: https://www.iana.org/assignments/media-types/
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def _typed(value: Any, datatype: str) -> dict[str, Any]:
    return {"@value": str(value), "@type": datatype}


def _distribution(base: str, page: DatasetPage, version: CatalogVersion) -> dict[str, Any]:
    ref = page.summary.ref
    return {
        "@id": f"{base}datasets/{ref}/versions/{version.number}",
        "@type": "dcat:Distribution",
        "dct:title": version.title or f"{page.summary.title}, version {version.number}",
        "dcat:version": str(version.number),
        "dcat:mediaType": {
            "@id": f"https://www.iana.org/assignments/media-types/{PARQUET_MEDIA_TYPE}"
        },
        "dct:format": PARQUET_MEDIA_TYPE,
        "dct:issued": _typed(version.created_at.isoformat(), "xsd:dateTime"),
        "dcat:accessURL": {"@id": f"{base}datasets/{ref}"},
        "dct:conformsTo": {"@id": _standard_iri(base, page.standard.name)},
    }


def _standard_iri(base: str, name: str) -> str:
    return f"{base}standards/{quote(name)}"


def _dataset(base: str, page: DatasetPage) -> dict[str, Any]:
    summary = page.summary
    ref = summary.ref
    keywords = sorted({page.standard.name, *(f.name for f in page.standard.fields)})
    out: dict[str, Any] = {
        "@id": f"{base}datasets/{ref}",
        "@type": "dcat:Dataset",
        "dct:identifier": str(ref),
        "dct:title": summary.title,
        "dct:description": summary.description,
        "dct:publisher": {
            "@id": f"{base}providers/{ref.provider}",
            "@type": "foaf:Agent",
            "foaf:name": summary.provider,
        },
        "dct:conformsTo": {
            "@id": _standard_iri(base, page.standard.name),
            "@type": "dct:Standard",
            "dct:title": page.standard.title or page.standard.name,
            "dcat:version": page.standard.version,
        },
        "dct:issued": _typed(page.created_at.isoformat(), "xsd:dateTime"),
        "dct:modified": _typed(summary.updated_at.isoformat(), "xsd:dateTime"),
        "dcat:keyword": keywords,
        "dcat:distribution": [_distribution(base, page, v) for v in page.versions],
    }
    if page.versions:
        out["dcat:version"] = str(page.versions[-1].number)
    return out


def export_dcat(
    catalog: Catalog, *, base_url: str, title: str = "entrepot catalog"
) -> dict[str, Any]:
    """The whole catalog as one DCAT-3 JSON-LD document; IRIs start with ``base_url``."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    pages = catalog.pages()
    return {
        "@context": CONTEXT,
        "@id": f"{base}catalog",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dcat:dataset": [_dataset(base, page) for page in pages],
        "foaf:homepage": {"@id": base},
    }
