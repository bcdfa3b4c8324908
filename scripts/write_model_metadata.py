#!/usr/bin/env python3
"""Writes the LandFusion model card into an ONNX model, so LandFusion can run it.

The card format is documented in resources/models/README.md; this script is a command-line front
end of core/models (build_card, write_model, read_model).

Examples (write negative numbers as --mean=-12.5,... so they are not taken for options):
  # a U-Net exported from PyTorch, taking S1 VV/VH in dB, standardised, two classes
  .venv/bin/python scripts/write_model_metadata.py water.onnx --task segmentation \\
      --bands VV,VH --classes "0:land:#c8b58a,1:water:#1f78b4" \\
      --mean=-12.5,-19.6 --std 4.6,5.9 --clip-min=-35,-42 --clip-max=5,-5 \\
      --tile-size 256 --overlap 64 --size-divisor 8 --pixel-size 10

  # show what a model holds
  .venv/bin/python scripts/write_model_metadata.py water.onnx --show

  # rewrite a format-1 model (older LandFusion) as format 2, changing nothing else
  .venv/bin/python scripts/write_model_metadata.py old.onnx --upgrade

See resources/models/README.md for every key and its default.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _make_importable():
    root = os.path.dirname(HERE)
    if os.path.basename(root) == "landfusion":  # the installed plugin: its parent is on the path
        sys.path.insert(0, os.path.dirname(root))
    else:  # a checkout (plugin_import is not shipped in the plugin zip)
        sys.path.insert(0, root)
        from plugin_import import make_importable

        make_importable()


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


def _units(text):
    return [u.strip() for u in text.split(",")] if text else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="ONNX file")
    parser.add_argument("--output", help="write to this file instead of changing MODEL in place")
    parser.add_argument("--show", action="store_true", help="print the model card and exit")
    parser.add_argument("--upgrade", action="store_true",
                        help="rewrite an older (format 1) LandFusion model as format 2")
    parser.add_argument("--from-json", help="JSON file with card entries (the options override it)")
    parser.add_argument("--task", choices=["segmentation", "patch_classifier", "pixel_classifier",
                                           "change_model", "patch_classification"])
    parser.add_argument("--bands", help="input band names in channel order, e.g. VV,VH or B02,B03")
    parser.add_argument("--units", help="band units in order (dB, linear, reflectance, DN, "
                                        "index), one or one per band")
    parser.add_argument("--classes", help="value:name:#rrggbb,... or name,name,...")
    parser.add_argument("--offset", help="normalisation offset: one number or one per band")
    parser.add_argument("--scale", help="normalisation scale: one number or one per band")
    parser.add_argument("--clip-min", help="clip_min after offset/scale (one or per band)")
    parser.add_argument("--clip-max", help="clip_max after offset/scale (one or per band)")
    parser.add_argument("--mean", help="normalisation mean (one or per band)")
    parser.add_argument("--std", help="normalisation std (one or per band)")
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
    _make_importable()
    from landfusion.core.errors import LandFusionError, ModelError
    from landfusion.core.models.card import build_card, card_from_json
    from landfusion.core.models.format import FORMAT_VERSION
    from landfusion.core.models.reading import read_model
    from landfusion.core.models.writing import write_model

    try:
        if args.show:
            card = read_model(args.model)
            shown = card.to_json()
            if card.format_version != FORMAT_VERSION:
                shown["note"] = (f"read from format {card.format_version}; --upgrade rewrites "
                                 f"it as format {FORMAT_VERSION}")
            print(json.dumps(shown, indent=2, ensure_ascii=False))
            return 0
        values = {}
        try:
            current = read_model(args.model)
        except ModelError:
            current = None  # a plain ONNX file: the options describe it
        if current is not None:
            values = current.__dict__.copy()
            values.pop("path", None)
        if args.upgrade and current is None:
            raise ModelError(f"'{args.model}' is not a LandFusion model; nothing to upgrade.")
        if args.from_json:
            with open(args.from_json, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if "bands" in loaded and isinstance(loaded["bands"], list) and loaded["bands"] and \
                    isinstance(loaded["bands"][0], dict):
                values.update(card_from_json(loaded).__dict__)
                values.pop("path", None)
            else:
                values.update(loaded)
        given = {
            "task": args.task,
            "bands": [b.strip() for b in args.bands.split(",")] if args.bands else None,
            "band_units": _units(args.units),
            "classes": _classes(args.classes) if args.classes else None,
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
            values[key] = value
        if args.bands and not args.units:
            values.pop("band_units", None)
        if args.bands:
            values.pop("band_roles", None)
            values.pop("band_stats", None)
        if args.units and len(values["band_units"]) == 1:
            values["band_units"] = values["band_units"] * len(values.get("bands") or [1])
        missing = [k for k in ("task", "bands", "classes") if not values.get(k)]
        if missing:
            raise ModelError(f"'{args.model}' has no LandFusion card yet; give "
                             f"{', '.join('--' + m for m in missing)}.")
        values.pop("format_version", None)
        card = build_card(what="The model card to write", **values)
        path = write_model(args.model, card, args.output)
        card = read_model(path)
        print(f"{path}: {card.task}, bands {', '.join(card.bands)}, classes "
              f"{', '.join(c.name for c in card.classes)} (LandFusion model format "
              f"{card.format_version})")
        return 0
    except (LandFusionError, OSError, ValueError) as exc:
        print(f"write_model_metadata: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
