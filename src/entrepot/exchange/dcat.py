"""The catalog as DCAT-3 JSON-LD, for data spaces and open-data portals to harvest.

One ``dcat:Catalog`` holds a ``dcat:Dataset`` per dataset and one ``dcat:DataService``:
the node's private-query API. Data never leaves a node, so no distribution is a
file to download: each dataset has one ``dcat:Distribution`` whose
``dcat:accessService`` is that service and whose ``dcat:accessURL`` is its query
endpoint; the answers are JSON, under the node's licence, and access is restricted
(a consumer needs a grant, whose ODRL agreement targets the dataset's ``@id``).

Every IRI is a route of the node's API, so a harvester that follows one reaches the
thing it names (with a token: every route of the API asks for one). An agent or a
distribution, which has no route of its own, is a fragment of the page that lists it.
The ``@context`` is inline, so a reader never needs the network to expand it. The
document conforms to the DCAT-AP 3.0.0 SHACL shapes (checked by the tests).

A dataset's scope, as its provider declared it, is ``dct:spatial`` (a
``dct:Location`` per region) and ``dcat:theme`` (its sector, a ``skos:Concept`` of the
sector code list, which the catalog names as its ``dcat:themeTaxonomy``). Each is a
code's entry in its code list's route (``/v1/standards/codelists/{name}#{code}``),
labelled with ``skos:prefLabel``.

The export is made to be harvested and republished, so it holds public metadata
only, whoever asks for it: no byte size, checksum or row count (DCAT makes all of
them optional), which would tell versions one person apart or let a guesser match
rebuilt files (see docs/privacy.md, "What anyone can see").

Reference: DCAT 3 (https://www.w3.org/TR/vocab-dcat-3/), DCAT-AP 3.0.0
(https://semiceu.github.io/DCAT-AP/releases/3.0.0/).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from entrepot.exchange.catalog import Catalog, DatasetPage
from entrepot.standards.scope import SECTOR_LIST, Term

__all__ = [
    "ANSWER_MEDIA_TYPE",
    "CONTEXT",
    "DEFAULT_LICENSE",
    "RESTRICTED",
    "agent_iri",
    "catalog_header",
    "dataset_entry",
    "dataset_iri",
    "export_dcat",
]

# Answers are JSON documents of noisy aggregates; no file of the data is ever served.
ANSWER_MEDIA_TYPE = "application/json"
_IANA = "http://www.iana.org/assignments/media-types/"
_EU = "http://publications.europa.eu/resource/authority/"
# The EU access-rights vocabulary DCAT-AP recommends: available under conditions.
RESTRICTED = _EU + "access-right/RESTRICTED"
DEFAULT_LICENSE = _EU + "licence/CC_BY_4_0"

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def _base(base_url: str) -> str:
    return base_url if base_url.endswith("/") else base_url + "/"


def dataset_iri(base_url: str, ref: str) -> str:
    """A dataset's ``@id``: its catalog page (``GET /v1/catalog/datasets/{ref}``)."""
    provider, _, dataset = ref.partition("/")
    return f"{_base(base_url)}v1/catalog/datasets/{quote(provider)}/{quote(dataset)}"


def agent_iri(base_url: str, slug: str) -> str:
    """An organization's ``@id``: its entry in ``GET /v1/providers``."""
    return f"{_base(base_url)}v1/providers#{quote(slug)}"


def _typed(value: Any, datatype: str) -> dict[str, Any]:
    return {"@value": str(value), "@type": datatype}


def _standard_iri(base: str, name: str) -> str:
    return f"{base}v1/standards/{quote(name)}"


def _codelist_iri(base: str, name: str) -> str:
    """A code list's ``@id``: its route (``GET /v1/standards/codelists/{name}``)."""
    return f"{base}v1/standards/codelists/{quote(name)}"


def _sector_scheme(base: str) -> dict[str, Any]:
    return {
        "@id": _codelist_iri(base, SECTOR_LIST),
        "@type": "skos:ConceptScheme",
        "dct:title": "Sectors of activity",
    }


def _term(base: str, term: Term, kind: str) -> dict[str, Any]:
    return {
        "@id": f"{_codelist_iri(base, term.codelist)}#{quote(term.code)}",
        "@type": kind,
        "skos:prefLabel": term.label,
        "skos:notation": term.code,
    }


def _service(base: str, license_iri: str, pages: list[DatasetPage]) -> dict[str, Any]:
    return {
        "@id": _service_iri(base),
        "@type": "dcat:DataService",
        "dct:title": "Private queries",
        "dct:description": "Aggregate SQL over a dataset, answered with differential "
        "privacy within a granted ε budget; no row ever leaves the node.",
        "dcat:endpointURL": _resource(f"{base}v1/queries"),
        "dcat:endpointDescription": _resource(f"{base}openapi.json"),
        "dct:accessRights": _rights(),
        "dct:license": _license(license_iri),
        "dcat:servesDataset": [{"@id": dataset_iri(base, str(p.summary.ref))} for p in pages],
    }


def _service_iri(base: str) -> str:
    """The query service's ``@id``: the API's documentation page."""
    return f"{base}docs"


def _resource(iri: str) -> dict[str, Any]:
    # DCAT-AP's shapes ask for the class explicitly; a harvester without RDFS
    # inference would not know that every IRI names an rdfs:Resource.
    return {"@id": iri, "@type": "rdfs:Resource"}


def _rights() -> dict[str, Any]:
    return {"@id": RESTRICTED, "@type": "dct:RightsStatement"}


def _license(iri: str) -> dict[str, Any]:
    return {"@id": iri, "@type": "dct:LicenseDocument"}


def _distribution(base: str, page: DatasetPage, license_iri: str) -> dict[str, Any]:
    iri = dataset_iri(base, str(page.summary.ref))
    return {
        "@id": f"{iri}#query",
        "@type": "dcat:Distribution",
        "dct:title": f"{page.summary.title}: private queries",
        "dct:description": "Differentially private aggregates, on request under a grant.",
        "dcat:accessURL": _resource(f"{base}v1/queries"),
        "dcat:accessService": {"@id": _service_iri(base)},
        "dcat:mediaType": {"@id": _IANA + ANSWER_MEDIA_TYPE, "@type": "dct:MediaType"},
        "dct:license": _license(license_iri),
        "dct:rights": _rights(),
        "dct:conformsTo": {"@id": _standard_iri(base, page.standard.name)},
    }


def _agent(base: str, slug: str, name: str) -> dict[str, Any]:
    return {"@id": agent_iri(base, slug), "@type": "foaf:Agent", "foaf:name": name}


def dataset_entry(
    base_url: str, page: DatasetPage, *, license: str, latest: int | None
) -> dict[str, Any]:
    """One ``dcat:Dataset``; ``latest`` is its newest version's number, if it has one."""
    base = _base(base_url)
    summary = page.summary
    ref = summary.ref
    keywords = sorted({page.standard.name, *(f.name for f in page.standard.fields)})
    out: dict[str, Any] = {
        "@id": dataset_iri(base, str(ref)),
        "@type": "dcat:Dataset",
        "dct:identifier": str(ref),
        "dct:title": summary.title,
        "dct:description": summary.description or summary.title,
        "dct:publisher": _agent(base, ref.provider, summary.provider),
        "dct:conformsTo": {
            "@id": _standard_iri(base, page.standard.name),
            "@type": "dct:Standard",
            "dct:title": page.standard.title or page.standard.name,
            "dcat:version": page.standard.version,
        },
        "dct:accessRights": _rights(),
        "dct:issued": _typed(page.created_at.isoformat(), "xsd:dateTime"),
        "dct:modified": _typed(summary.updated_at.isoformat(), "xsd:dateTime"),
        "dcat:keyword": keywords,
        "dcat:distribution": [_distribution(base, page, license)],
    }
    if summary.regions:
        out["dct:spatial"] = [_term(base, r, "dct:Location") for r in summary.regions]
    if summary.sector is not None:
        theme = _term(base, summary.sector, "skos:Concept")
        out["dcat:theme"] = [{**theme, "skos:inScheme": {"@id": _codelist_iri(base, SECTOR_LIST)}}]
    if latest is not None:
        out["dcat:version"] = str(latest)
    return out


def export_dcat(
    catalog: Catalog,
    *,
    base_url: str,
    title: str = "entrepot catalog",
    license: str = DEFAULT_LICENSE,
) -> dict[str, Any]:
    """The whole catalog as one DCAT-3 JSON-LD document; IRIs start with ``base_url``.

    ``license`` is the IRI of the licence the node's answers are given under.
    """
    base = _base(base_url)
    pages = catalog.pages()
    return {
        **catalog_header(base, title=title, license=license),
        "dcat:dataset": [
            dataset_entry(
                base,
                page,
                license=license,
                latest=page.versions[-1].number if page.versions else None,
            )
            for page in pages
        ],
        "dcat:service": [_service(base, license, pages)],
    }


def catalog_header(base_url: str, *, title: str, license: str) -> dict[str, Any]:
    """The ``dcat:Catalog``'s own statements, without its datasets and service."""
    base = _base(base_url)
    return {
        "@context": CONTEXT,
        "@id": f"{base}v1/catalog/dcat",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dct:description": "The datasets of this entrepot node: described here, "
        "queried with differential privacy, never downloaded.",
        "dct:publisher": {
            "@id": f"{base}v1/catalog/dcat#publisher",
            "@type": "foaf:Agent",
            "foaf:name": title,
        },
        "dct:license": _license(license),
        "dcat:themeTaxonomy": _sector_scheme(base),
    }
