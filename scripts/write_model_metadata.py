#!/usr/bin/env python3
"""Writes LandFusion metadata into an ONNX model, so `landfusion:cnnclassify` can run it.

Examples (write negative numbers as --mean=-12.5,... so they are not taken for options):
  # a U-Net exported from PyTorch, taking S1 VV/VH in dB, standardised, two classes
  .venv/bin/python scripts/write_model_metadata.py water.onnx --task segmentation \\
      --bands VV,VH --classes "0:land:#c8b58a,1:water:#1f78b4" \\
      --mean=-12.5,-19.6 --std 4.6,5.9 --clip-min=-35,-42 --clip-max=5,-5 \\
      --tile-size 256 --overlap 64 --size-divisor 8 --pixel-size 10

  # show what a model holds
  .venv/bin/python scripts/write_model_metadata.py water.onnx --show

See resources/models/README.md for every key and its default.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _import_core():
    sys.path.insert(0, os.path.dirname(HERE))
    from plugin_import import make_importable

    make_importable()
    from landfusion.core.models import cnn_model as model_metadata

    return model_metadata


def _numbers(text):
    if text is None:
        return None
    values = [None if v.strip().lower() in ("", "none", "null") else float(v)
              for v in text.split(",")]
    return values[0] if len(values) == 1 else values


def _classes(text):
    """'0:land:#c8b58a,1:water' or 'land,water' (values 0, 1, ...)."""
    classes = []
    for i, item in enumerate(p.strip() for p in text.split(",") if p.strip()):
        parts = item.split(":")
        if len(parts) == 1:
            classes.append({"value": i, "name": parts[0]})
        else:
            entry = {"value": int(parts[0]), "name": parts[1]}
            if len(parts) > 2 and parts[2]:
                entry["color"] = parts[2]
            classes.append(entry)
    return classes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="ONNX file")
    parser.add_argument("--output", help="write to this file instead of changing MODEL in place")
    parser.add_argument("--show", action="store_true", help="print the metadata and exit")
    parser.add_argument("--from-json", help="JSON file with metadata keys (the options override it)")
    parser.add_argument("--task", choices=["segmentation", "patch_classification"])
    parser.add_argument("--bands", help="input band names in channel order, e.g. VV,VH or B02,B03")
    parser.add_argument("--classes", help="value:name:#rrggbb,... or name,name,...")
    parser.add_argument("--offset", help="input_offset: one number or one per band")
    parser.add_argument("--scale", help="input_scale: one number or one per band")
    parser.add_argument("--clip-min", help="clip_min after offset/scale (one or per band)")
    parser.add_argument("--clip-max", help="clip_max after offset/scale (one or per band)")
    parser.add_argument("--mean", help="input_mean (one or per band)")
    parser.add_argument("--std", help="input_std (one or per band)")
    parser.add_argument("--nodata-values", help="input values meaning no data, e.g. 0")
    parser.add_argument("--nodata-fill", type=float, help="normalised value for nodata pixels")
    parser.add_argument("--output-type", choices=["logits", "probabilities"])
    parser.add_argument("--tile-size", type=int)
    parser.add_argument("--overlap", type=int, dest="tile_overlap")
    parser.add_argument("--size-divisor", type=int)
    parser.add_argument("--patch-size", type=int)
    parser.add_argument("--patch-stride", type=int)
    parser.add_argument("--pixel-size", type=float, help="expected pixel size in metres")
    parser.add_argument("--name")
    parser.add_argument("--description")
    parser.add_argument("--version")
    parser.add_argument("--license")
    parser.add_argument("--author")
    args = parser.parse_args(argv)
    core = _import_core()
    from landfusion.core.errors import LandFusionError

    try:
        if args.show:
            props = core.read_props(args.model)
            decoded = {}
            for key, value in sorted(props.items()):
                try:
                    decoded[key] = json.loads(value)
                except ValueError:
                    decoded[key] = value
            print(json.dumps(decoded, indent=2))
            core.metadata_from_props(props, what=f"Model '{args.model}'")
            return 0
        props = {k: v for k, v in core.read_props(args.model).items() if k in core.ALL_KEYS}
        if args.from_json:
            with open(args.from_json, encoding="utf-8") as handle:
                props.update({k: v if isinstance(v, str) else json.dumps(v)
                              for k, v in json.load(handle).items()})
        given = {
            "task": args.task,
            "bands": json.dumps([b.strip() for b in args.bands.split(",")]) if args.bands else None,
            "classes": json.dumps(_classes(args.classes)) if args.classes else None,
            "input_offset": _numbers(args.offset), "input_scale": _numbers(args.scale),
            "clip_min": _numbers(args.clip_min), "clip_max": _numbers(args.clip_max),
            "input_mean": _numbers(args.mean), "input_std": _numbers(args.std),
            "nodata_values": _numbers(args.nodata_values), "nodata_fill": args.nodata_fill,
            "output_type": args.output_type, "tile_size": args.tile_size,
            "tile_overlap": args.tile_overlap, "size_divisor": args.size_divisor,
            "patch_size": args.patch_size, "patch_stride": args.patch_stride,
            "pixel_size": args.pixel_size, "name": args.name, "description": args.description,
            "version": args.version, "license": args.license, "author": args.author,
        }
        for key, value in given.items():
            if value is None:
                continue
            if key == "nodata_values" and not isinstance(value, list):
                value = [value]
            props[key] = value if isinstance(value, str) else json.dumps(value)
        path = core.write_model_metadata(args.model, props, args.output)
        meta = core.read_model_metadata(path)
        print(f"{path}: {meta.task}, bands {', '.join(meta.bands)}, classes "
              f"{', '.join(c.name for c in meta.classes)}")
        return 0
    except (LandFusionError, OSError, ValueError) as exc:
        print(f"write_model_metadata: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
