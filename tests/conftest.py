from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).with_name("data")
VERDICT = DATA / "the-verdict.txt"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip cleanly where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def verdict() -> Path:
    return VERDICT
