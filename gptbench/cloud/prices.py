"""The price catalog (prices.csv): who rents which GPUs at what on-demand $/hour, observed when, and where it says so."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from gptbench.errors import GptbenchError

PRICES_FILE = Path(__file__).with_name("prices.csv")
PRICES_ENV = "GPTBENCH_PRICES_FILE"  # a user's own catalog, same columns
COLUMNS = ("provider", "instance", "gpu", "gpus", "price_per_hour_usd", "observed", "source")


@dataclass(frozen=True)
class Offer:
    """One instance type at one provider: `gpus` of `gpu` (a gpus.csv name) for `price_per_hour_usd` the lot."""

    provider: str
    instance: str
    gpu: str
    gpus: int
    price_per_hour_usd: float
    price_basis: str  # on-demand | marketplace (a median or typical listing, not a fixed price)
    observed: str  # YYYY-MM-DD the price was seen
    source: str
    notes: str = ""  # what the figure is when it is not one observed listing (a typical figure, a mixed median...)
    vcpus: int | None = None  # the instance's CPUs where a listing says so (set-up bills tokenizing from them)
    vcpus_source: str = ""

    @property
    def price_per_gpu_hour_usd(self) -> float:
        return self.price_per_hour_usd / self.gpus

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; empty notes and an unknown vCPU source as null."""
        return {**asdict(self), "notes": self.notes or None, "vcpus_source": self.vcpus_source or None}


def _offer(row: dict[str, str], where: str) -> Offer:
    missing = [c for c in COLUMNS if not (row.get(c) or "").strip()]
    if missing:
        raise GptbenchError(f"{where}: empty {', '.join(missing)}; every row needs {', '.join(COLUMNS)}")
    try:
        gpus, price = int(row["gpus"]), float(row["price_per_hour_usd"])
    except ValueError as e:
        raise GptbenchError(f"{where}: gpus must be a whole number and price_per_hour_usd a number ({e})") from e
    if gpus <= 0 or not price > 0:
        raise GptbenchError(f"{where}: gpus and price_per_hour_usd must be positive")
    vcpus_text = (row.get("vcpus") or "").strip()
    if vcpus_text and not (vcpus_text.isdigit() and int(vcpus_text) > 0):
        raise GptbenchError(f"{where}: vcpus must be a positive whole number or empty (unknown), got {vcpus_text!r}")
    return Offer(
        provider=row["provider"].strip(),
        instance=row["instance"].strip(),
        gpu=row["gpu"].strip().lower(),
        gpus=gpus,
        price_per_hour_usd=price,
        price_basis=(row.get("price_basis") or "on-demand").strip(),
        observed=row["observed"].strip(),
        source=row["source"].strip(),
        notes=(row.get("notes") or "").strip(),
        vcpus=int(vcpus_text) if vcpus_text else None,
        vcpus_source=(row.get("vcpus_source") or "").strip(),
    )


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> tuple[Offer, ...]:  # the file's mtime in the key: an edited file is re-read
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise GptbenchError(f"price catalog {path}: cannot read ({e.strerror}); check --catalog-file / ${PRICES_ENV}") from e
    except (csv.Error, UnicodeDecodeError) as e:
        raise GptbenchError(f"price catalog {path}: not a CSV file ({e})") from e
    if not rows:
        raise GptbenchError(f"price catalog {path}: no rows; see gptbench/cloud/prices.csv for the columns")
    return tuple(_offer(row, f"price catalog {path}, row {i}") for i, row in enumerate(rows, start=2))


def all_offers(path: str | Path | None = None) -> tuple[Offer, ...]:
    """Every row of the catalog: `path`, else $GPTBENCH_PRICES_FILE, else the catalog shipped in the package."""
    chosen = str(path or os.environ.get(PRICES_ENV) or PRICES_FILE)
    try:
        mtime_ns = os.stat(chosen).st_mtime_ns
    except OSError:
        mtime_ns = -1  # _load reports the missing or unreadable file
    return _load(chosen, mtime_ns)


def current_offers(path: str | Path | None = None) -> tuple[tuple[Offer, ...], tuple[Offer, ...]]:
    """The newest observation of each (provider, instance, gpu, gpus), and the older ones it supersedes."""
    newest: dict[tuple[str, str, str, int], Offer] = {}
    for offer in all_offers(path):
        key = (offer.provider, offer.instance, offer.gpu, offer.gpus)
        if key not in newest or offer.observed > newest[key].observed:  # ISO dates order as strings
            newest[key] = offer
    kept = set(newest.values())
    return tuple(newest.values()), tuple(o for o in all_offers(path) if o not in kept)


def cheapest_price_per_gpu_hour(gpu_name: str) -> tuple[float, str, str] | None:
    """The lowest current catalog price per GPU-hour for a spec-table GPU: (USD, "provider instance", observed date)."""
    offers = [offer for offer in current_offers()[0] if offer.gpu == gpu_name]  # newest observation of each instance
    if not offers:
        return None
    best = min(offers, key=lambda offer: offer.price_per_gpu_hour_usd)
    return best.price_per_gpu_hour_usd, f"{best.provider} {best.instance}", best.observed
