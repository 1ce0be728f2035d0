"""What a browser posts to ``/_dash-update-component``, built from an app's callback map; and the
decoding of Plotly's typed arrays in the answers. Shared by the tests and bench/load_bench.py."""

from __future__ import annotations

import base64

import numpy as np


def callback_body(callback_map: dict, output_fragment: str, values: dict[str, object]) -> dict:
    """The JSON the browser posts for the callback whose outputs contain ``output_fragment``."""
    key, spec = next((k, v) for k, v in callback_map.items() if output_fragment in k)
    outputs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True)) for o in key.strip(".").split("...")]
    inputs = [{"id": i["id"], "property": i["property"], "value": values.get(i["id"])} for i in spec["inputs"]]
    state = [{"id": i["id"], "property": i["property"], "value": values.get(i["id"])} for i in spec["state"]]
    return {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0], "inputs": inputs,
            "state": state, "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}


def plotly_array(value) -> list:
    """Plotly sends numeric arrays as typed base64 ({"dtype", "bdata"}); lists stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)
