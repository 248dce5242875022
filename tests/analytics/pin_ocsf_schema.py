"""Writes the pinned OCSF schema the Parquet exports are validated against: the JSON Schema
(draft 2020-12) of OCSF 1.5.0's API Activity (class 6003) with the cloud profile, as
ocsf-json-schema (scripts/requirements.txt) generates it from OCSF's own exports.

usage: .venv/bin/python tests/analytics/pin_ocsf_schema.py   (check_parquet.py checks it)
"""

import json
import pathlib

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

OUT = pathlib.Path(__file__).resolve().parent / "ocsf-1.5.0-api_activity-cloud.schema.json"

ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.5.0"))
schema = ocsf.get_class_schema(class_name=ocsf.lookup_class_name_from_uid(6003), profiles=["cloud"])
OUT.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
print(OUT)
