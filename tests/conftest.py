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


@pytest.fixture(autouse=True)
def _a_new_users_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in an empty folder of its own, never in the checkout.

    The README's first command (`gptbench run`) leaves a report in ./reports; a test that ran in the checkout read it
    (estimate, plan and compare default to ./reports) and failed, so the README's two commands failed in order.
    """
    monkeypatch.chdir(tmp_path)
