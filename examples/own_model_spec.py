"""Your own model as a spec file: JSON/YAML/TOML in torch's layer vocabulary, no torch needed.

Run: python examples/own_model_spec.py
"""

import json
import tempfile
from pathlib import Path

import shapecalc
from shapecalc.models.specfile import load_spec, save_spec

SPEC = {
    "name": "tiny-resnet",
    "input": [1, 3, 32, 32],
    "layers": [
        # in_channels / in_features are optional: inferred from the input, like torch's Lazy modules
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "Residual", "repeat": 2,
         "body": [{"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
                  {"type": "BatchNorm2d"}, {"type": "ReLU"},
                  {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1}],
         "post": {"type": "ReLU"}},
        {"type": "AdaptiveAvgPool2d", "output_size": 1},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10},
    ],
}

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "tiny.json"
    path.write_text(json.dumps(SPEC, indent=1))
    result = shapecalc.analyze(str(path))  # the default input comes from the file
    print(result.table())
    print("output:", result.output_shape, "params:", result.total_params)

    # Any zoo model can be written out, edited by hand, and read back identically.
    src = shapecalc.load_model("lenet")
    toml_path = save_spec(src.spec, Path(folder) / "lenet.toml", "lenet", src.default_input)
    print(toml_path.read_text().splitlines()[0:4])
    again = shapecalc.analyze(str(toml_path))
    print("lenet round trip identical:",
          [(r.name, r.output_shape, r.params) for r in again.records]
          == [(r.name, r.output_shape, r.params) for r in shapecalc.analyze("lenet").records])

    # A mistake in the file is reported with the file and the key path.
    bad = Path(folder) / "bad.json"
    bad.write_text(json.dumps({"layers": [{"type": "ReLU"}, {"type": "Conv2d", "out_channels": 8,
                                                              "kernel_size": "3"}]}))
    try:
        load_spec(bad)
    except shapecalc.SpecError as err:
        print("error:", str(err).replace(folder, "<tmp>"))
