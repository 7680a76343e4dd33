"""Names of providers and datasets: slugs, references and their SQL names.

A dataset is referred to as ``<provider>/<dataset>`` (``riverside-hospitals/
outpatient-visits``); in a consumer's SQL the same dataset is the table
``riverside_hospitals.outpatient_visits``. Slugs are lowercase ASCII words joined by
single hyphens, so the mapping between the two forms is one-to-one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from entrepot.errors import InvalidInput, param

__all__ = [
    "DatasetRef",
    "check_slug",
    "dataset_slug_from_title",
    "dataset_title",
    "slugify",
]

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SQL_PART = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
# A slug becomes a SQL identifier and a directory name: keep it short.
SLUG_MAX = 64
# A trailing year names the version ("Outpatient visits 2025"), not the dataset.
_TRAILING_YEAR = re.compile(r"[\s\-_–—(]*(?:19|20)\d{2}\)?\s*$")


def check_slug(slug: str, what: str = "slug") -> str:
    """Return ``slug`` if it is a valid slug, else raise :class:`InvalidInput`."""
    if len(slug) <= SLUG_MAX and _SLUG.fullmatch(slug):
        return slug
    raise InvalidInput(
        f"{what} {slug!r} is not a valid slug",
        hint=f"use lowercase letters, digits and single hyphens, at most {SLUG_MAX} "
        f"characters, e.g. {slugify(slug) or 'riverside-hospitals'!r}",
    )


def slugify(text: str) -> str:
    """Lowercase ASCII words of ``text`` joined by hyphens (accents dropped)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = "-".join(words)[:SLUG_MAX].strip("-")
    return slug


def dataset_slug_from_title(title: str) -> str:
    """The dataset slug a title implies: slugified, a trailing year dropped.

    ``"Outpatient visits 2025"`` gives ``outpatient-visits``.
    """
    slug = slugify(_TRAILING_YEAR.sub("", title)) or slugify(title)
    if not slug:
        raise InvalidInput(
            f"cannot derive a dataset slug from the title {title!r}",
            hint=f"give the dataset slug explicitly with {param('dataset')}, "
            f"e.g. {param('dataset')} visits",
        )
    return slug


def dataset_title(title: str) -> str:
    """The dataset's title from a version's title: without its trailing year."""
    return _TRAILING_YEAR.sub("", title).strip() or title.strip()


@dataclass(frozen=True, order=True)
class DatasetRef:
    """A dataset's name: its provider's slug and its own slug."""

    provider: str
    dataset: str

    def __post_init__(self) -> None:
        check_slug(self.provider, "provider")
        check_slug(self.dataset, "dataset")

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        """Read ``provider/dataset``."""
        provider, sep, dataset = text.strip().partition("/")
        if not sep or not provider or not dataset:
            raise InvalidInput(
                f"{text!r} is not a dataset reference",
                hint="write it as <provider>/<dataset>, e.g. riverside-hospitals/outpatient-visits",
            )
        return cls(provider, dataset)

    @classmethod
    def from_sql_name(cls, name: str) -> DatasetRef:
        """Read the SQL table name ``provider_slug.dataset_slug``."""
        provider, sep, dataset = name.strip().lower().partition(".")
        if not (sep and _SQL_PART.fullmatch(provider) and _SQL_PART.fullmatch(dataset)):
            raise InvalidInput(
                f"{name!r} is not a dataset table name",
                hint="write it as <provider>.<dataset> with underscores, "
                "e.g. riverside_hospitals.outpatient_visits",
            )
        return cls(provider.replace("_", "-"), dataset.replace("_", "-"))

    @property
    def sql_name(self) -> str:
        """``riverside_hospitals.outpatient_visits``: how consumers' SQL names it."""
        return f"{self.provider.replace('-', '_')}.{self.dataset.replace('-', '_')}"

    def __str__(self) -> str:
        return f"{self.provider}/{self.dataset}"
