import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def tiny_copy(tmp_path):
    """A writable copy of the tiny hand-made instance."""
    dst = tmp_path / "tiny"
    shutil.copytree(INSTANCES / "tiny", dst)
    return dst
