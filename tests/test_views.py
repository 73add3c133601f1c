"""Every environment's notebook views accept the call notebook 01 makes."""
import inspect
import json
import re
from pathlib import Path

import pytest

from cassandra_wm.envs.registry import BUILTIN, get_kit

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_data_collection.ipynb"


def _figures_call_keywords() -> set[str]:
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    call = next(src for src in cells if "views.figures(" in src)
    args = call.split("views.figures(", 1)[1].split("):", 1)[0]
    return set(re.findall(r"(\w+)=", args))


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_views_accept_notebook_01s_call(name):
    views = get_kit(name).views_module()
    if views is None or not hasattr(views, "figures"):
        pytest.skip(f"{name} has no views")
    keywords = _figures_call_keywords()
    assert {"spec", "df", "flat", "daily"} <= keywords  # the parse found the call
    inspect.signature(views.figures).bind(**{k: None for k in keywords})
